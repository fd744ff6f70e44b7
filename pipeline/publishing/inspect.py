"""Audit: removed documents of a run, with the rule that removed them and the value it measured."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from curate.errors import UserError
from curate.pipeline.execution.storage import Output


@dataclass
class Removed:
    """One removed document as `curate inspect` shows it."""

    reason: str
    url: str
    text: str
    measured: float | None
    bound: str | None
    threshold: float | None


def removed_documents(output_root: str, language: str, reason: str, limit: int = 5) -> tuple[int, list[Removed]]:
    """(how many documents `reason` removed, the first `limit` of them) from `<out>/<lang>/_work/removed/`.

    `reason` is a full drop reason (`gopher_repetition.dup_line_share`) or a block name (`gopher_repetition`)."""
    from curate.language_configs import load_language_config

    config = load_language_config(language)
    output = Output(output_root)
    files = output.fs.glob(output.language(config.code, "_work", "removed", "**", "*.parquet"))
    if not files:
        raise UserError(f"no removed documents under {output.language(config.code, '_work', 'removed')}: "
                        f"run `curate run --lang {language}` first")
    frames = [pl.read_parquet(output.fs.open(f, "rb").read()) for f in sorted(files)]
    removed = pl.concat(frames, how="diagonal_relaxed")
    matches = removed.filter((pl.col("drop_reason") == reason) | pl.col("drop_reason").str.starts_with(reason + "."))
    if matches.is_empty():
        known = removed["drop_reason"].value_counts(sort=True)
        listing = ", ".join(f"{r} ({n})" for r, n in known.iter_rows())
        raise UserError(f"no document was removed for {reason!r}; reasons in this run: {listing}")
    shown = []
    for row in matches.sort("doc_key" if "doc_key" in matches.columns else "id").head(limit).iter_rows(named=True):
        measured, bound, threshold = _rule_values(row, config)
        shown.append(Removed(row["drop_reason"], row.get("url") or "", row.get("text") or "", measured, bound,
                             threshold))
    return matches.height, shown


def _rule_values(row: dict, config) -> tuple[float | None, str | None, float | None]:
    try:
        from curate.blocks.quality import rule_statistic, rule_threshold

        column = rule_statistic(row["drop_reason"])
        bound, threshold = rule_threshold(row["drop_reason"], config)
    except (ImportError, KeyError, ValueError, AttributeError):
        if row["drop_reason"] == "lid.low_score":
            return row.get("language_score"), "min", None
        if row["drop_reason"].startswith("dedup."):  # the size of the duplicate cluster it was in
            return row.get(f"{row['drop_reason'].split('.', 1)[1]}_cluster_size"), None, None
        return None, None, None
    return row.get(column), bound, threshold
