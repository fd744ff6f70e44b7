"""Audit: removed documents of a run, with the rule that removed them, the value it measured and the threshold
the run applied.

The removed files are streamed row group by row group with the reason as a filter (row groups whose
`drop_reason` statistics cannot match are skipped), from the language's folder (`<out>/<lang>/_work/removed/`:
stage-3 filters, dedup) and the run's shared folder (`<out>/_work/removed/stage1/`: one file per unit, every
language's LID and stage-1 removals, this language's rows by `lid_label`, and the URL filter, WARC and
extraction reasons, before any language is known). Thresholds come from the run's stage-3 manifests, not from today's
config.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from curate.errors import UserError
from curate.pipeline.execution.parts import LANGUAGE
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
    evidence: str = ""
    """Why, beyond a number: for `decontamination.<set>`, the item and the words the document shares with it."""


def _matches(reason: str) -> ds.Expression:
    """`reason` itself or any rule of the block it names (`gopher_repetition` → `gopher_repetition.*`)."""
    column = ds.field("drop_reason")
    return (column == reason) | pc.starts_with(column, pattern=reason + ".")


# Reasons a run counts without storing the pages, and why.
COUNTED_ONLY = {
    "lid.other_language": "pages of other languages are most of a crawl, so a run counts them and keeps none "
                          "(run their language with `curate run --lang …` to see them)",
    "prefilter.other_language": "pages the cheap LID pass rules out for every run language are counted before "
                                "extraction and never stored (`--no-prefilter` extracts them; docs/performance.md)",
    "prefilter.cld2_other_language": "pages CLD2 reads as none of the run languages are counted before extraction "
                                     "and never stored (`--no-prefilter` extracts them; docs/performance.md)",
}
COUNTED_ONLY_DEFAULT = "the run counts these records and keeps no rows for them (docs/bad-input.md)"


def counted_only(output: Output, code: str, reason: str) -> int:
    """How many pages the language's stats.json counts under `reason` (or its block's rules) outside the
    removed files: the run's shared counts and the stage counts."""
    stats = output.read_json(output.language(code, "stats.json")) or {}
    total = 0
    for counts in (stats.get("shared") or {}, stats.get("stage1") or {}, stats.get("stage3") or {}):
        total += sum(int(n) for key, n in counts.items() if key == reason or key.startswith(reason + "."))
    return total


def _raise_if_counted_only(output: Output, code: str, reason: str) -> None:
    counted = counted_only(output, code, reason)
    if counted:
        raise UserError(f"{counted:,} pages were counted under {reason!r} (stats.json) but not stored: "
                        f"{COUNTED_ONLY.get(reason, COUNTED_ONLY_DEFAULT)}")


def run_thresholds(output: Output, code: str) -> dict[str, float]:
    """Each stage-3 rule's threshold as the run's committed stage-3 units recorded it."""
    thresholds: dict[str, float] = {}
    for path in sorted(output.fs.glob(output.path("_work", "manifests", "stage3", f"{code}-*.json"))):
        manifest = output.read_json(path) or {}
        thresholds.update((manifest.get("result") or {}).get("thresholds") or {})
    return thresholds


def removed_documents(output_root: str, language: str, reason: str, limit: int = 5) -> tuple[int, list[Removed]]:
    """(how many documents `reason` removed, the first `limit` of them) from the run's removed files.

    `reason` is a full drop reason (`gopher_repetition.dup_line_share`) or a block name (`gopher_repetition`)."""
    from curate.language_configs import load_language_config

    config = load_language_config(language)
    output = Output(output_root)
    files = sorted(output.fs.glob(output.language(config.code, "_work", "removed", "**", "*.parquet")))
    files += sorted(output.fs.glob(output.path("_work", "removed", "**", "*.parquet")))
    if not files:
        _raise_if_counted_only(output, config.code, reason)
        raise UserError(f"no removed documents under {output.language(config.code, '_work', 'removed')}: "
                        f"run `curate run --lang {language}` first")
    # stage-1, stage-3 and shared files hold different columns: one schema over all (footers only)
    schema = pa.unify_schemas([pq.read_schema(f, filesystem=output.fs) for f in files], promote_options="permissive")
    removed = ds.dataset(files, schema=schema, filesystem=output.fs, format="parquet")
    # the run's stage-1 audit files hold every language: this one's rows, and the shared blocks' (no language)
    mine = (ds.field(LANGUAGE).is_null() | (ds.field(LANGUAGE) == config.code)) if LANGUAGE in schema.names else None
    matches = _matches(reason) if mine is None else _matches(reason) & mine
    total = removed.count_rows(filter=matches)
    if not total:
        _raise_if_counted_only(output, config.code, reason)
        reasons = removed.to_table(columns=["drop_reason"], filter=mine)["drop_reason"].value_counts().to_pylist()
        listing = ", ".join(f"{r['values']} ({r['counts']})" for r in sorted(reasons, key=lambda r: -r["counts"]))
        raise UserError(f"no document was removed for {reason!r}; reasons in this run: {listing}")
    thresholds = run_thresholds(output, config.code)
    batches = removed.to_batches(filter=matches, batch_size=max(limit, 1))
    rows = islice((row for batch in batches for row in batch.to_pylist()), limit)
    shown = [Removed(row["drop_reason"], row.get("url") or "", row.get("text") or "",
                     *_rule_values(row, thresholds), _evidence(row)) for row in rows]
    return total, shown


def _evidence(row: dict) -> str:
    """The item a decontamination removal matched and the shared words (empty for other reasons)."""
    from curate.blocks.decontamination import ITEM, MATCH

    if not row.get(ITEM):
        return ""
    return f"item: {row[ITEM]}\nshared words: {row.get(MATCH) or ''}"


def _rule_values(row: dict, thresholds: dict[str, float]) -> tuple[float | None, str | None, float | None]:
    """(the value the rule measured, `max` or `min`, the threshold the run applied)."""
    reason = row["drop_reason"]
    try:
        from curate.blocks.quality import rule_for

        rule = rule_for(reason)
    except (ImportError, KeyError, ValueError, AttributeError):
        if reason == "lid.low_score":
            return row.get("language_score"), "min", None
        if reason.startswith("dedup."):  # the size of the duplicate cluster it was in
            return row.get(f"{reason.split('.', 1)[1]}_cluster_size"), None, None
        return None, None, None
    return row.get(rule.statistic), rule.bound, thresholds.get(reason, rule.fixed)
