"""The run report: `<out>/report.html`, one self-contained page for every language of an output.

`write_report(out)` reads each `<out>/<lang>/stats.json` and writes one HTML page with inline CSS and the
plots of `pipeline/publishing/plots.py` as base64 PNGs: no script, font, style sheet or image is fetched, so the page
opens offline, from a bucket or as an attachment. Per language, a part appears when `stats.json` has its
key: the funnel of documents per step, removal per rule, records skipped before language ID, language mix,
dedup (cluster-size histogram per method), rehydration table, score distributions (`scores`, else sampled
from the released shards), ablations (bits per byte per variant), throughput per stage, quarantined files;
keys the report does not know are listed as they are, so every number of `stats.json` is on the page.
Numbers are written by `format_number`: integers with thousands separators (`1,234,567`), other numbers to
four significant digits (`17.08`, `0.8235`, `12,346`).
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from curate.errors import UserError
from curate.pipeline.publishing import decontamination, plots
from curate.pipeline.publishing.card import (
    SCORE_SAMPLE,
    count_stages,
    find_table,
    int_keyed,
    is_score_column,
    scalars,
    shard_paths,
    size_range,
)
from curate.pipeline.execution.storage import Output

REPORT_NAME = "report.html"
RUN_NAME = "run.json"  # the run's own record: its languages and wall time (written by `curate run`)
SCORE_BINS = 50  # bins of a score histogram computed from the shards
MIX_SHOWN = 15  # language-mix rows shown; the rest are folded into a <details>
MIX_BARS = 20
STAGE_NAMES = {"startup": "startup: plan, model checks, Ray, preflight", "stage1": "stage 1: read, extract, identify",
               "dedup": "dedup", "stage3": "stage 3: filter, format", "final": "final shards"}
STEP_TABLE_KEYS = ("table", "step_table", "weights", "repetitions")
# FineWeb2's removal-rate distribution: one value per cluster size (rebalancing/removal_rates.py)
DISTRIBUTION_COLUMNS = ("cluster_sizes", "cluster_removal_rates", "cluster_post_filtering_doc_counts")
KNOWN_KEYS = {"language", "documents_read", "shared", "stage1", "stage3", "released", "language_mix", "quarantined",
              "seconds", "documents_per_second", "dedup", "rehydration", "scores", "ablation", "optout",
              "decontamination"}
# removals in `shared` that happen before language ID
PRE_LID_RULES = ("url_filter.", "optout.", "prefilter.", "extract.")
NOT_REMOVALS = frozenset({"prefilter.stepped_aside", "prefilter.cld2_stepped_aside"})  # counts in `shared` of pages that went on
_INTEGER = re.compile(r"-?\d+")
_DECIMAL = re.compile(r"-?\d*\.\d+(?:[eE][-+]?\d+)?|-?\d+[eE][-+]?\d+")


# --- numbers ----------------------------------------------------------------------------------------------------
def format_number(value: int | float) -> str:
    """`1,234,567` for integers; other numbers to 4 significant digits, never in scientific notation, without
    trailing zeros (`17.08`, `0.8235`, `5.7`, `12,346`)."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    decimals = min(6, max(0, 3 - math.floor(math.log10(abs(value)))))
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_key(key: Any) -> str:
    """A JSON key as the page shows it: numeric keys (`"1000"`, `"0.5"`) as numbers, others unchanged."""
    text = str(key)
    if _INTEGER.fullmatch(text):
        return format_number(int(text))
    if _DECIMAL.fullmatch(text):
        return format_number(float(text))
    return text


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    return None


def _counts(value: Any) -> dict[str, int] | None:
    """A {reason: count} section, or None if `value` is not one."""
    if not isinstance(value, Mapping):
        return None
    counts = {str(k): v for k, v in value.items() if isinstance(v, int) and not isinstance(v, bool)}
    return counts if len(counts) == len(value) else None


def _removals(stats: Mapping[str, Any]) -> dict[str, int] | None:
    """The removals counted in `stats["shared"]` (not `NOT_REMOVALS`); None if it has none."""
    shared = _counts(stats.get("shared"))
    return None if shared is None else {k: v for k, v in shared.items() if k not in NOT_REMOVALS}


def _sum_prefixed(counts: Mapping[str, int], prefixes: tuple[str, ...]) -> int:
    return sum(v for k, v in counts.items() if k.startswith(prefixes))


# --- what the report computes -----------------------------------------------------------------------------------
def funnel(stats: Mapping[str, Any]) -> list[tuple[str, int]]:
    """Documents after each step: read → URL filter → LID prefilter → extraction → LID for this language →
    stage 1 → dedup → filters → released (a step appears when `stats` records what it needs)."""
    steps: list[tuple[str, int]] = []
    read = _number(stats.get("documents_read"))
    shared = _removals(stats)
    if read is not None:
        steps.append(("documents read", int(read)))
        if shared is not None:
            after_url = int(read) - _sum_prefixed(shared, ("url_filter.",))
            steps.append(("after URL filter", after_url))
            if _sum_prefixed(shared, ("optout.",)):
                after_url -= _sum_prefixed(shared, ("optout.",))
                steps.append(("after opt-outs (robots.txt, TDM)", after_url))
            after_prefilter = after_url - _sum_prefixed(shared, ("prefilter.",))
            if after_prefilter != after_url:  # runs with the LID-first cascade
                steps.append(("after LID prefilter", after_prefilter))
            steps.append(("after extraction", after_prefilter - _sum_prefixed(shared, ("extract.",))))
    stage1 = _counts(stats.get("stage1"))
    if stage1 is not None:  # {} when no page was identified as the language: 0
        steps.append(("identified as this language", sum(stage1.values())))
        if "kept" in stage1:
            steps.append(("kept in stage 1", stage1["kept"]))
    stage3 = _counts(stats.get("stage3"))
    if stage3:
        if "dedup" in stats or _sum_prefixed(stage3, ("dedup.",)):
            steps.append(("after dedup", sum(stage3.values()) - _sum_prefixed(stage3, ("dedup.",))))
        if "kept" in stage3:
            steps.append(("after filters", stage3["kept"]))
    released = stats.get("released")
    if isinstance(released, Mapping) and _number(released.get("documents")) is not None:
        steps.append(("released", int(released["documents"])))
    return steps


@dataclass
class StageThroughput:
    """Seconds a stage took, the documents that entered it and documents per second."""

    stage: str
    seconds: float
    documents: int | None
    per_second: float | None


def throughput(stats: Mapping[str, Any]) -> list[StageThroughput]:
    """One row per entry of `seconds` (stage 1, dedup, stage 3, final first), and a total over the run."""
    seconds = stats.get("seconds")
    if not isinstance(seconds, Mapping):
        return []
    stage1 = _counts(stats.get("stage1")) or {}
    stage3 = _counts(stats.get("stage3")) or {}
    read = _number(stats.get("documents_read"))
    entering: dict[str, int | None] = {
        "stage1": int(read) if read is not None else None,
        "dedup": stage1.get("kept"),
        "stage3": sum(stage3.values()) if stage3 else None,
        "final": stage3.get("kept"),
    }
    order = [s for s in STAGE_NAMES if s in seconds] + [s for s in seconds if s not in STAGE_NAMES]
    rows = []
    for stage in order:
        value = _number(seconds[stage])
        if value is None:
            continue
        documents = entering.get(stage)
        per_second = documents / value if documents is not None and value > 0 else None
        if stage == "stage1" and _number(stats.get("documents_per_second")) is not None:
            per_second = stats["documents_per_second"]  # as the run recorded it
        rows.append(StageThroughput(stage, value, documents, per_second))
    if rows:
        total = sum(r.seconds for r in rows)
        documents = entering["stage1"]
        rows.append(StageThroughput("total", total, documents,
                                    documents / total if documents is not None and total > 0 else None))
    return rows


def score_summary(values: Sequence[float] | np.ndarray, bins: int = SCORE_BINS) -> dict[str, Any]:
    """`{"bins": edges, "counts": counts, "quantiles": {p10, p50, p90}, "mean", "documents"}` of the finite values."""
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    if not data.size:
        return {"bins": [], "counts": [], "quantiles": {}, "documents": 0}
    counts, edges = np.histogram(data, bins=bins)
    p10, p50, p90 = np.quantile(data, [0.1, 0.5, 0.9])
    return {"bins": [float(e) for e in edges], "counts": [int(c) for c in counts],
            "quantiles": {"p10": float(p10), "p50": float(p50), "p90": float(p90)}, "mean": float(data.mean()),
            "documents": int(data.size)}


def shard_scores(output: Output, code: str) -> tuple[dict[str, dict[str, Any]], int]:
    """Score summaries of the released shards' score columns (an even sample of `SCORE_SAMPLE` rows) and the
    stride of that sample; only the score columns are read."""
    paths = shard_paths(output, code)
    if not paths:
        return {}, 1
    handles = [output.fs.open(path, "rb") for path in paths]
    try:
        files = [pq.ParquetFile(handle) for handle in handles]
        total = sum(f.metadata.num_rows for f in files)
        names = sorted({f.name for parquet in files for f in parquet.schema_arrow if is_score_column(f.name, f.type)})
        stride = max(1, math.ceil(total / SCORE_SAMPLE))
        samples: dict[str, list[np.ndarray]] = {name: [] for name in names}
        offset = 0
        for parquet in files:
            present = [n for n in names if n in parquet.schema_arrow.names]
            if not present:
                offset += parquet.metadata.num_rows
                continue
            for batch in parquet.iter_batches(columns=present, batch_size=65_536):
                start = (-offset) % stride
                for name in present:
                    values = batch.column(name).to_numpy(zero_copy_only=False).astype(float, copy=False)
                    samples[name].append(values[start::stride])
                offset += batch.num_rows
    finally:
        for handle in handles:
            handle.close()
    return {name: score_summary(np.concatenate(parts) if parts else []) for name, parts in samples.items()}, stride


# --- HTML pieces ------------------------------------------------------------------------------------------------
CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #1d1d1f; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { border-bottom: 2px solid #4C72B0; padding-bottom: .2em; margin-top: 2.2em; }
h3 { margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: .92em; }
th, td { border: 1px solid #d0d4dc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #eef1f6; } td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
img { display: block; max-width: 100%; height: auto; margin: .5em 0 1em; }
details { margin: .4em 0 1em; } summary { cursor: pointer; color: #2b4f8a; }
.note { color: #555; font-size: .92em; } nav a { margin-right: 1em; } code { font-size: .95em; }
"""


def _cell(value: Any, header: bool = False) -> str:
    tag = "th" if header else "td"
    if isinstance(value, bool) or value is None:
        return f"<{tag}>{'–' if value is None else str(value).lower()}</{tag}>"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f'<{tag} class="n">{format_number(value)}</{tag}>'
    return f"<{tag}>{html.escape(str(value))}</{tag}>"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "<tr>" + "".join(_cell(h, header=True) for h in header) + "</tr>"
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"


def _details(summary: str, body: str) -> str:
    return f"<details><summary>{html.escape(summary)}</summary>{body}</details>"


def _image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _p(text: str, css: str | None = None) -> str:
    attribute = f' class="{css}"' if css else ""
    return f"<p{attribute}>{html.escape(text)}</p>"


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.2%}" if whole else "–"


def _flatten(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """Leaves of a nested stats value as (dotted path, value); a list of scalars is one leaf."""
    if isinstance(value, Mapping):
        rows = []
        for key, item in value.items():
            rows += _flatten(item, f"{path}.{key}" if path else str(key))
        return rows or [(path, "")]
    if isinstance(value, (list, tuple)):
        if all(not isinstance(v, (Mapping, list, tuple)) for v in value):
            return [(path, ", ".join(format_number(v) if _number(v) is not None else str(v) for v in value))]
        rows = []
        for index, item in enumerate(value):
            rows += _flatten(item, f"{path}[{index}]")
        return rows
    return [(path, value)]


def _values_table(value: Any, header: tuple[str, str] = ("", "value")) -> str:
    """Any stats value as a two-column table of its leaves ("" when it has none)."""
    rows = [[key, leaf] for key, leaf in _flatten(value)]
    return _table(list(header), rows) if rows else ""


def _leftovers(section: Mapping[str, Any], handled: set[str]) -> str:
    rest = {k: v for k, v in section.items() if k not in handled}
    return _values_table(rest) if rest else ""


# --- the sections of one language -------------------------------------------------------------------------------
def _funnel_part(stats: Mapping[str, Any], name: str) -> str:
    steps = funnel(stats)
    if not steps:
        return ""
    first = steps[0][1]
    rows = []
    for index, (step, documents) in enumerate(steps):
        previous = steps[index - 1][1] if index else documents
        rows.append([step.replace("this language", name), documents, previous - documents, _share(documents, first)])
    part = "<h3>Funnel</h3>" + _table(["step", "documents", "removed by the step", "share of the first step"], rows)
    if dict(steps).get("identified as this language", first) < plots.FEWEST_PLOTTED:
        return part
    bars = plots.horizontal_bars({label.replace("this language", name): n for label, n in steps},
                                 "Documents after each step", "documents")
    return part + _image(bars, "documents after each step")


def _removal_part(stats: Mapping[str, Any]) -> str:
    """Removal per rule: pre-LID rules of `shared` (share of pages read) and every stage that counts `kept`."""
    rows: list[list[Any]] = []
    removed: dict[str, int] = {}
    shares: dict[str, float] = {}
    shared = _removals(stats) or {}
    read = _number(stats.get("documents_read"))
    for rule, count in shared.items():
        if rule.startswith((*PRE_LID_RULES, "lid.")):
            where = "language ID (every language)" if rule.startswith("lid.") else "before LID (every language)"
            rows.append([where, rule, count, _share(count, read or 0)])
            removed[rule], shares[rule] = count, count / read if read else 0.0
    for stage, counts in count_stages(stats).items():
        entering = sum(counts.values())
        for rule, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            if rule == "kept" or not count:  # what a stage keeps is the funnel's, not a removal
                continue
            rows.append([stage, rule, count, _share(count, entering)])
            removed[rule] = removed.get(rule, 0) + count
            shares[rule] = removed[rule] / entering if entering else 0.0
    if not rows:
        return ""
    return ("<h3>Removal per rule</h3>" + _table(["stage", "outcome", "documents", "share of the stage's input"], rows)
            + _image(plots.removal_per_rule(removed, shares), "documents removed per rule"))


def _shared_part(stats: Mapping[str, Any]) -> str:
    shared = stats.get("shared")
    if not isinstance(shared, Mapping) or not shared:
        return ""
    return ("<h3>Records and pages before language ID</h3>"
            + _p("Counted once for every language of the run: WARC records read, and pages skipped by reason.",
                 "note") + _values_table(shared, ("reason", "count")))


def _optout_part(stats: Mapping[str, Any]) -> str:
    """What opt-outs the run honoured and, per crawl, what each removed (`stats["optout"]`)."""
    optout = stats.get("optout")
    if not isinstance(optout, Mapping):
        return ""
    from curate.pipeline.publishing.card import OPTOUT_COLUMNS

    crawls = optout.get("robots_crawls") or {}
    per_crawl = optout.get("per_crawl") or {}
    rows = [[crawl, "yes" if crawls.get(crawl) else ("not available" if crawl in crawls else "not used"),
             *(int((per_crawl.get(crawl) or {}).get(c, 0)) for c in OPTOUT_COLUMNS)]
            for crawl in sorted(set(per_crawl) | set(crawls))]
    lists = ", ".join(f"{item.get('source')} ({item.get('entries')} entries)" for item in optout.get("lists") or [])
    return ("<h3>Opt-outs</h3>"
            + _p(f"Applied: {', '.join(optout.get('applied') or []) or 'none'}. User agents: "
                 f"{', '.join(optout.get('agents') or []) or '(robots.txt not applied)'}. Lists: {lists or 'none'}.",
                 "note")
            + (_table(["crawl", "robots.txt", *OPTOUT_COLUMNS], rows) if rows else ""))


def _mix_part(stats: Mapping[str, Any]) -> str:
    mix = _counts(stats.get("language_mix"))
    if not mix:
        return ""
    ordered = sorted(mix.items(), key=lambda kv: (-kv[1], kv[0]))
    total = sum(mix.values())
    rows = [[label, count, _share(count, total)] for label, count in ordered]
    part = ("<h3>Language mix</h3>"
            + _p(f"Labels language ID gave to the {format_number(total)} pages it saw "
                 f"({format_number(len(mix))} labels).", "note")
            + _table(["label", "pages", "share"], rows[:MIX_SHOWN]))
    if len(rows) > MIX_SHOWN:
        part += _details(f"{format_number(len(rows) - MIX_SHOWN)} more labels",
                         _table(["label", "pages", "share"], rows[MIX_SHOWN:]))
    return part + _image(plots.horizontal_bars(dict(ordered), "Language mix", "pages", MIX_BARS), "language mix")


def _histogram_rows(histogram: Mapping[int, int], documents: Mapping[int, int] | None) -> list[list[Any]]:
    return [[size, count, (documents or {}).get(size, size * count)] for size, count in histogram.items()]


def _dedup_part(stats: Mapping[str, Any]) -> str:
    dedup = stats.get("dedup")
    if not isinstance(dedup, Mapping):
        return ""
    from curate.dedup import METHODS

    methods = {str(k): v for k, v in dedup.items() if isinstance(v, Mapping) and int_keyed(v.get("histogram"))}
    methods = dict(sorted(methods.items(), key=lambda kv: (METHODS.index(kv[0]) if kv[0] in METHODS else len(METHODS),
                                                           kv[0])))  # in the order stage 3 applies them
    part = "<h3>Deduplication</h3>"
    overall = scalars(dedup)
    if overall:
        part += _table(["", "value"], [[k, v] for k, v in overall.items()])
    handled = set(overall) | set(methods)
    if methods:
        keys = list(dict.fromkeys(k for values in methods.values() for k in scalars(values)))
        part += _table(["", *methods], [[k, *[scalars(m).get(k) for m in methods.values()]] for k in keys])
    for method, values in methods.items():
        histogram = int_keyed(values.get("histogram")) or {}
        documents = int_keyed(values.get("documents_by_size"))
        largest = max(histogram) if histogram else 0
        part += (_p(f"{method}: {format_number(len(histogram))} cluster sizes, largest cluster "
                    f"{format_number(largest)} documents.")
                 + _image(plots.cluster_size_histogram(histogram), f"{method} cluster sizes")
                 + _details(f"{method}: clusters per size",
                            _table(["cluster size", "clusters", "documents"], _histogram_rows(histogram, documents))))
        rest = {k: v for k, v in values.items()
                if k not in {"histogram", "documents_by_size", *scalars(values)}}
        if rest:
            part += _values_table({method: rest})
    return part + _leftovers(dedup, handled)


def _rehydration_part(stats: Mapping[str, Any]) -> str:
    rehydration = stats.get("rehydration")
    if not isinstance(rehydration, Mapping):
        return ""
    part = "<h3>Rehydration</h3>"
    handled: set[str] = set()
    details = scalars(rehydration)
    if details:
        part += _table(["", "value"], [[k, v] for k, v in details.items()])
        handled |= set(details)
    table = find_table(rehydration, STEP_TABLE_KEYS)
    if table:
        handled.add(next(k for k in (*STEP_TABLE_KEYS, *rehydration) if int_keyed(rehydration.get(k)) == table))
        keys = list(table)
        rows = [[size_range(k, keys[i + 1] if i + 1 < len(keys) else None), table[k]] for i, k in enumerate(keys)]
        part += (_p("A document of a given cluster size is repeated this many times (its weight column):")
                 + _table(["cluster size", "repetitions"], rows))
    distribution = rehydration.get("distribution")
    if isinstance(distribution, Mapping):
        order = [k for k in DISTRIBUTION_COLUMNS if k in distribution] + [k for k in distribution
                                                                          if k not in DISTRIBUTION_COLUMNS]
        columns = {k: distribution[k] for k in order if isinstance(distribution[k], (list, tuple))}
        lengths = {len(v) for v in columns.values()}
        if columns and len(lengths) == 1:
            handled.add("distribution")
            rows = [list(row) for row in zip(*columns.values())]
            part += (_p("Removal-rate distribution the table was computed from (FineWeb2's format):")
                     + _values_table({k: v for k, v in distribution.items() if k not in columns}))
            if rows:
                part += _details(f"per cluster size ({format_number(len(rows))} rows)", _table(list(columns), rows))
    return part + _leftovers(rehydration, handled)


def _scores_part(scores: Mapping[str, Any], source: str) -> str:
    if not scores:
        return ""
    summaries = {str(k): v for k, v in scores.items() if isinstance(v, Mapping)}
    quantile_keys = list(dict.fromkeys(k for s in summaries.values() if isinstance(s.get("quantiles"), Mapping)
                                       for k in s["quantiles"]))
    other_keys = list(dict.fromkeys(k for s in summaries.values() for k in scalars(s)))
    rows = []
    for name, summary in summaries.items():
        quantiles = summary.get("quantiles") if isinstance(summary.get("quantiles"), Mapping) else {}
        rows.append([name, *[quantiles.get(k) for k in quantile_keys], *[scalars(summary).get(k) for k in other_keys]])
    part = ("<h3>Score distributions</h3>" + _p(source, "note")
            + _table(["column", *[format_key(k) for k in quantile_keys], *other_keys], rows))
    for name, summary in summaries.items():
        edges, counts = list(summary.get("bins") or []), list(summary.get("counts") or [])
        quantiles = summary.get("quantiles") if isinstance(summary.get("quantiles"), Mapping) else {}
        median = next((quantiles[k] for k in ("p50", "median", "0.5", "50") if _number(quantiles.get(k)) is not None),
                      None)
        if sum(_number(c) or 0 for c in counts) >= plots.FEWEST_PLOTTED:
            part += _image(plots.binned_distribution(name, edges, counts, median), f"distribution of {name}")
        if len(edges) == len(counts) + 1:
            bins = [[edges[i], edges[i + 1], counts[i]] for i in range(len(counts))]
            part += _details(f"{name}: documents per bin", _table(["from", "to", "documents"], bins))
        rest = {k: v for k, v in summary.items() if k not in {"bins", "counts", "quantiles", *scalars(summary)}}
        if len(edges) != len(counts) + 1:
            rest |= {"bins": edges, "counts": counts}
        if rest:
            part += _values_table({name: rest})
    return part


_SEED_BAND_KEYS = ("tokens", "bpb", "bpb_min", "bpb_max", "final_bpb", "seeds")


def _ablation_plot(variants: Mapping[str, Mapping[str, Any]], stats: Mapping[str, Any]) -> str:
    """`curate ablate`'s own plot (mean curve per variant, the band between the lowest and highest seed)
    when stats.json holds the seed extremes, else the mean curves alone."""
    if all(all(key in v for key in _SEED_BAND_KEYS) for v in variants.values()):
        from curate.pipeline.publishing.plots import bpb_plot

        language = stats.get("language")
        png = bpb_plot(variants, language if isinstance(language, str) else None)
        return _image(png, "bits per byte against training tokens per variant, "
                           "with the band between the lowest and highest seed")
    series = {name: (v.get("tokens") or [], v.get("bpb") or []) for name, v in variants.items()}
    return _image(plots.line_plot(series, "Bits per byte per variant", "training tokens", "bits per byte"),
                  "bits per byte against training tokens per variant")


def _ablation_part(stats: Mapping[str, Any]) -> str:
    ablation = stats.get("ablation")
    if not isinstance(ablation, Mapping):
        return ""
    variants = {str(k): v for k, v in (ablation.get("variants") or {}).items() if isinstance(v, Mapping)}
    part = "<h3>Ablations</h3>"
    if variants:
        extra = list(dict.fromkeys(k for v in variants.values() for k in scalars(v) if k != "final_bpb"))
        rows = [[name, values.get("final_bpb"), len(values.get("bpb") or []),
                 (values.get("tokens") or [None])[-1], *[scalars(values).get(k) for k in extra]]
                for name, values in variants.items()]
        header = ["variant", "final bits per byte (final_bpb)", "evaluations", "tokens at the last evaluation"]
        part += _table([*header, *extra], rows)
        part += _ablation_plot(variants, stats)
        for name, values in variants.items():
            points = len(values.get("tokens") or [])
            first = ("tokens", "bpb")  # then bpb_std, bpb_min, loss, … (any list with one value per evaluation)
            curves = {k: v for k, v in sorted(values.items(), key=lambda kv: first.index(kv[0]) if kv[0] in first
                                              else len(first)) if isinstance(v, list) and len(v) == points and points}
            if "tokens" in curves:
                part += _details(f"{name}: curves by training tokens",
                                 _table(list(curves), [list(row) for row in zip(*curves.values())]))
            rest = {k: v for k, v in values.items() if k not in {*curves, *scalars(values)}}
            if rest:
                part += _values_table({name: rest})
    return part + _leftovers(ablation, {"variants"} if variants else set())


def _throughput_part(stats: Mapping[str, Any]) -> str:
    rows = throughput(stats)
    if not rows:
        return ""
    table = _table(["stage", "seconds", "documents in", "documents per second"],
                   [[STAGE_NAMES.get(r.stage, r.stage), r.seconds, r.documents, r.per_second] for r in rows])
    return ("<h3>Throughput per stage</h3>" + table
            + _p("Stage 1 is shared by every language of the run; its pages per second are as the run recorded them.",
                 "note"))


def _released_part(stats: Mapping[str, Any]) -> str:
    released = stats.get("released")
    if not isinstance(released, Mapping):
        return ""
    part = "<h3>Released</h3>"
    per_dump = released.get("per_dump")
    handled = {"per_dump"} if isinstance(per_dump, Mapping) else set()
    if isinstance(per_dump, Mapping):
        rows = [[dump or "(none)", count] for dump, count in per_dump.items()]
        if _number(released.get("documents")) is not None:
            rows.append(["total", released["documents"]])
            handled.add("documents")
        part += _table(["crawl", "documents"], rows)
    return part + _leftovers(released, handled)


def _quarantined_part(stats: Mapping[str, Any]) -> str:
    quarantined = stats.get("quarantined")
    if not quarantined:
        return ""
    items = quarantined if isinstance(quarantined, list) else [quarantined]
    return (f"<h3>Quarantined input files ({format_number(len(items))})</h3>"
            + _p("These files kept crashing a worker and were left out; the rest of the run completed.", "note")
            + "<ul>" + "".join(f"<li><code>{html.escape(str(item))}</code></li>" for item in items) + "</ul>")


@dataclass
class LanguageReport:
    """What the report shows of one language: its stats, display name and score summaries."""

    code: str
    name: str
    stats: dict[str, Any]
    scores: dict[str, Any] = field(default_factory=dict)
    scores_source: str = ""


def render_language(report: LanguageReport, with_mix: bool = True) -> str:
    """The `<section>` of one language (`with_mix=False`: without the language mix the index shows)."""
    stats = report.stats
    body = (_funnel_part(stats, report.name) + _removal_part(stats) + _shared_part(stats) + _optout_part(stats)
            + decontamination.report_part(stats.get("decontamination"))
            + (_mix_part(stats) if with_mix else "")
            + _dedup_part(stats) + _rehydration_part(stats) + _scores_part(report.scores, report.scores_source)
            + _ablation_part(stats) + _released_part(stats) + _throughput_part(stats) + _quarantined_part(stats))
    other = {k: v for k, v in stats.items() if k not in KNOWN_KEYS}
    if other:
        body += "<h3>Other recorded values</h3>" + _values_table(other)
    title = f"{report.name} ({report.code})" if report.name != report.code else report.code
    return f'<section id="lang-{html.escape(report.code)}"><h2>{html.escape(title)}</h2>{body}</section>'


FUNNEL_STEPS = ("documents read", "after URL filter", "after opt-outs (robots.txt, TDM)", "after LID prefilter",
                "after extraction", "identified as this language", "kept in stage 1", "after dedup", "after filters",
                "released")  # what `funnel` may return, in its order
OWN_STAGES = ("dedup", "stage3", "final")  # a language's own stages (startup and stage 1 are the run's, shared)


def _overview(reports: Sequence[LanguageReport], run: Mapping[str, Any] | None = None, with_mix: bool = False) -> str:
    """The index: every language's funnel in one table (a language with no document is a row of zeros), and the
    run's wall time when the run recorded it (`run.json`); `with_mix`: the language mix every language shares."""
    funnels = [dict(funnel(report.stats)) for report in reports]
    columns = [step for step in FUNNEL_STEPS if any(step in steps for steps in funnels)]
    rows = []
    for report, steps in zip(reports, funnels):
        seconds = report.stats.get("seconds")
        own = (sum(v for k, v in seconds.items() if k in OWN_STAGES and _number(v) is not None)
               if isinstance(seconds, Mapping) else None)
        rows.append([report.code, report.name, *(steps.get(step) for step in columns), own])
    links = " ".join(f'<a href="#lang-{html.escape(r.code)}">{html.escape(r.code)}</a>' for r in reports)
    wall = _number((run or {}).get("wall_seconds"))
    header = (_p(f"{len(reports):,} language(s); the run took {format_number(wall)} s of wall time (start-up and "
                 "stage 1 are shared by every language; a language's own seconds are its dedup, stage 3 and final "
                 "shards).") if wall is not None else "")
    labels = [step.replace("this language", "the language") for step in columns]
    mix = _mix_part(reports[0].stats) if with_mix else ""
    return (header + f"<nav>{links}</nav>"
            + _table(["language", "name", *labels, "own seconds"], rows) + mix)


def shared_mix(reports: Sequence[LanguageReport]) -> bool:
    """Whether the languages' mixes are one (their pages were labelled in one stage-1 pass): shown once, in the
    index."""
    mixes = [report.stats.get("language_mix") for report in reports]
    return len(reports) > 1 and bool(mixes[0]) and all(mix == mixes[0] for mix in mixes)


def render_report(root: str, reports: Sequence[LanguageReport], run: Mapping[str, Any] | None = None) -> str:
    """The whole page: the index (every language's funnel), then one section per language."""
    title = f"curate report: {root}"
    shared = shared_mix(reports)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>" + _overview(reports, run, with_mix=shared)
            + "".join(render_language(r, with_mix=not shared) for r in reports) + "</body></html>\n")


# --- reading an output ------------------------------------------------------------------------------------------
def _language_name(code: str) -> str:
    from curate.language_configs import ConfigError, load_language_config

    try:
        return load_language_config(code).name
    except ConfigError:
        return code


def language_codes(output: Output, languages: Sequence[str] | None = None) -> list[str]:
    """The languages of an output that have a `stats.json` (all, or those asked for: `fin` or `fin_Latn`)."""
    if languages is None:
        found = sorted(p.rstrip("/").rsplit("/", 2)[-2] for p in output.fs.glob(output.path("*", "stats.json")))
        if not found:
            raise UserError(f"no <lang>/stats.json under {output.root}: run `curate run --lang … --output "
                            f"{output.root}` first, or give the output folder of a run")
        return found
    codes = []
    for language in languages:
        code = language
        if not output.fs.exists(output.language(code, "stats.json")):
            from curate.language_configs import ConfigError, resolve_language

            try:
                code = resolve_language(language)
            except ConfigError:
                pass
        if not output.fs.exists(output.language(code, "stats.json")):
            raise UserError(f"no {output.language(code, 'stats.json')}: run `curate run --lang {language} --output "
                            f"{output.root}` first")
        codes.append(code)
    return list(dict.fromkeys(codes))


def read_language(output: Output, code: str) -> LanguageReport:
    """A language's stats, and its score summaries: `scores` of stats.json, else sampled from the shards."""
    stats = output.read_json(output.language(code, "stats.json"))
    if not isinstance(stats, dict):
        raise UserError(f"{output.language(code, 'stats.json')} is not a JSON object: rerun `curate run` for {code}")
    recorded = stats.get("scores")
    if isinstance(recorded, Mapping) and recorded:
        scores, source = dict(recorded), "As recorded in stats.json."
    else:
        scores, stride = shard_scores(output, code)
        source = ("Computed from the released shards" + (f", every {stride:,}th document." if stride > 1 else ".")
                  if scores else "")
    return LanguageReport(code, _language_name(code), stats, scores, source)


def write_report(output_root: str, languages: list[str] | None = None) -> str:
    """Write `<out>/report.html` with a section for every language of the output (or those given); returns its path."""
    output = Output(output_root)
    reports = [read_language(output, code) for code in language_codes(output, languages)]
    run = output.read_json(output.path(RUN_NAME))
    path = output.path(REPORT_NAME)
    output.write_bytes(path, render_report(output_root, reports, run if isinstance(run, dict) else None)
                       .encode("utf-8"))
    return path
