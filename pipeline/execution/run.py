"""`curate run` as a Python API: plan units from a source, then run the stages on Ray, resumably.

Each stage's unit commits a manifest (`_work/manifests/<stage>/<unit>.json`) holding its fingerprint,
the files it wrote and its counts. A rerun reuses every unit whose fingerprint still matches and redoes
the rest; fingerprints chain (a stage-3 bucket's fingerprint covers the fingerprints of the stage-1
units it read), so a run killed at any point and rerun gives the same final output.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import ray

from curate.blocks import faults
from curate.blocks.optout import DEFAULT_AGENTS
from curate.blocks.warc import WarcReader
from curate import dedup
from curate.pipeline.execution.executor import Resources, ray_map, run_units, start_ray
from curate.pipeline.execution import decontamination, optout
from curate.pipeline.execution.scorer_pool import attach_pool, detach_pool, plan_pool
from curate.pipeline.execution.graph import Graph, LanguageGraph, add_decontamination, build_graph
from curate.pipeline.execution.nodes import NodeChecked, preflight
from curate.pipeline.publishing.card import write_card
from curate.pipeline.publishing.report import RUN_NAME, write_report
from curate.errors import UserError
from curate.pipeline.execution.provenance import code_version, fingerprint, provenance
from curate.pipeline.sources.crawls import DEFAULT_SOURCE, Source, WarcFile, match_crawls, sample_files
from curate.pipeline.sources.estimate import request_bytes, responses_per_byte
from curate.pipeline.execution.stage1 import (MAX_ERRORS, CodeFault, Stage1Work, Unit, UnitResult, budget_message,
                                              merge_results)
from curate.pipeline.execution.stages import SHARD_BYTES, BucketResult, BucketUnit, FinalWork, Stage3Work
from curate.pipeline.execution.storage import Manifests, Output, RunLock
from curate.rebalancing import (DEFAULT_MIN_DOCS_PER_SIZE, distribution_to_json, merge_filter_outcome_counts,
                         rehydration_table, removal_rate_distribution_from_counts)

log = logging.getLogger("curate")

# Stage-1 Parquet bytes per bucket: at FineWeb2-like keep rates a bucket releases about one shard of SHARD_BYTES.
# A bucket task's memory does not grow with it (stage 3 and the final stage stream); it sets the task count.
BUCKET_BYTES = 1_000_000_000

# Above this many languages the driver's model checks run before Ray starts, not beside it (their loads, minutes
# for hundreds of tokenizers, kept Ray's node from registering within its 30 s on a busy machine).
OVERLAPPED_CHECK_LANGUAGES = 8

# Measured on this project's benchmark machine (README, performance): what a plan's cost estimate uses.
DOCS_PER_CORE_SECOND = 26.0  # whole pipeline on ~100 KB pages (benchmarks/e2e.py, 16×)


@dataclass
class RunOptions:
    """What `curate run` takes (see `curate run --help` for each option)."""

    languages: list[str]
    snapshots: str
    source: str = DEFAULT_SOURCE
    output: str = "out"
    max_files: int | None = None
    limit: int | None = None
    seed: int = 0
    lid: str | None = None
    lid_min_score: float | None = None
    extractor: str = "trafilatura"
    prefilter: bool = True  # the LID-first cascade: extract only pages a cheap LID pass finds possibly the language
    files_per_unit: int = 8
    buckets: int | None = None  # buckets per language for stage 3 and the final stage (None: from bucket_bytes)
    bucket_bytes: int = BUCKET_BYTES  # stage-1 Parquet bytes per bucket when `buckets` is not given
    num_cpus: int | None = None
    resources: Resources = field(default_factory=Resources)
    rehydration: str = "removal_rates"
    max_repetitions: int = 10
    rehydration_min_docs: int = DEFAULT_MIN_DOCS_PER_SIZE
    materialize: bool = False
    shard_bytes: int = SHARD_BYTES  # released shards' target size (a bucket over it is cut in equal pieces)
    # auto: index+neighbors where Common Crawl's index labels every language (CLD2's), else full; full: every record
    # of every WARC; index / index+neighbors: only the records the columnar index labels with the languages (+ closely
    # related ones), read by byte range (pipeline/sources/cc_index.py)
    select: str = "auto"
    index_primary_only: bool = False  # index selections: the language must be the page's first (main) one
    index_records_per_unit: int = 20_000  # index selections: selected records per unit (~4 core-minutes)
    skip_quarantined: bool = False  # keep files quarantined by an earlier run out (default: retry them)
    max_quarantined: int | None = None  # quarantined files that fail the run above (None: 1 % of the files, at least 1)
    max_errors: int = MAX_ERRORS  # documents blocks may raise on, per language, before the run stops (a bug)
    scorer_gpus: int | None = None  # GPUs for the transformer scorers' actor pool (None: every GPU of the cluster)
    optout: str | None = None  # opt-outs to apply: robots,tdm,list or none (None: each that has data)
    robots_agents: tuple[str, ...] = DEFAULT_AGENTS  # a page is dropped if robots.txt disallows any of them
    robots_from: list[str] = field(default_factory=list)  # more crawls whose robots.txt files count (newest wins)
    optout_lists: list[str] = field(default_factory=list)  # takedown lists (files or URLs), applied in stage 3
    decontaminate: list[str] = field(default_factory=list)  # evaluation set specs, with each config's own (stage 3)

    def __post_init__(self) -> None:
        """Bad values end with one line, before anything runs."""
        at_least = {"--files-per-unit": (self.files_per_unit, 1), "--buckets": (self.buckets, 1),
                    "--max-files": (self.max_files, 1), "--limit": (self.limit, 1), "--cpus": (self.num_cpus, 1),
                    "--bucket-bytes": (self.bucket_bytes, 1), "--max-repetitions": (self.max_repetitions, 1),
                    "--max-retries": (self.resources.max_retries, 0),
                    "--max-quarantined": (self.max_quarantined, 0), "--max-errors": (self.max_errors, 0),
                    "--memory-per-task": (self.resources.memory_per_task, 1)}
        for option, (value, minimum) in at_least.items():
            if value is not None and value < minimum:
                raise UserError(f"{option} {value}: give a number of at least {minimum}")
        if self.resources.cpus_per_task <= 0:
            raise UserError(f"--cpus-per-task {self.resources.cpus_per_task}: give a positive number")
        optout.choose(self.optout)  # an unknown opt-out name ends here, before anything runs


@dataclass
class Plan:
    source: Source
    crawls: list[str]
    units: list[Unit]
    select: str = "full"  # the selection used: full, index or index+neighbors (`--select auto` resolved)
    select_reason: str = "--select full"  # why: the option given, or what `auto` found
    listed: list[WarcFile] = field(default_factory=list)  # the crawls' (sampled) WARCs before an index selection

    @property
    def files(self) -> list[WarcFile]:
        return [f for u in self.units for f in u.files]


UNITS_PER_SLOT = 4  # while the input allows: no run ends with one unit running alone
MIN_INDEX_RECORDS_PER_UNIT = 1_000  # index selections: below it a unit's fixed costs outweigh its work


def worker_slots(options: RunOptions, remember: bool = False) -> int:
    """Stage-1 tasks that run at once: the run's CPUs (`--cpus`, else this machine's) per task's CPUs.

    The first run of an output records the figure (`_work/plan.json`) and later runs reuse it, so the units stay
    the same, and are reused, when the output is resumed on a machine or cluster of another size."""
    output = Output(options.output)
    recorded = output.read_json(output.path("_work", "plan.json"))
    if recorded and "worker_slots" in recorded:
        return int(recorded["worker_slots"])
    cpus = options.num_cpus or os.cpu_count() or 1
    slots = max(1, int(cpus // options.resources.cpus_per_task))
    if remember:
        output.write_json(output.path("_work", "plan.json"), {"worker_slots": slots})
    return slots


def unit_size(items: int, ceiling: int, slots: int, floor: int = 1) -> int:
    """Items (files, or index-selected records) per unit: enough units for `UNITS_PER_SLOT` per worker slot
    while the input allows, never more than `ceiling` per unit nor fewer than `floor`."""
    return max(1, min(ceiling, max(floor, -(-items // (slots * UNITS_PER_SLOT)))))


def make_plan(options: RunOptions, map_fn=None, fill_cache: bool = False) -> Plan:
    """Select crawls and files and group them into units (deterministic for the same options).

    With an index selection (`select="index"` or `"index+neighbors"`) each file keeps only the byte ranges of the
    records the crawl's columnar index labels with the run's languages, files without any are left out, and a
    unit holds about `index_records_per_unit` records; its id covers the ranges. `files_per_unit` and
    `index_records_per_unit` are ceilings: while the input allows, units are made small enough for
    `UNITS_PER_SLOT` units per worker slot (`unit_size`). The index files are scanned with
    `map_fn` (Ray tasks in a run; threads by default) and the selection is cached under the output (`fill_cache`;
    a dry run only reads the cache). `select="auto"` (the default) is `index+neighbors` where the index can label
    every language and every crawl has it, else `full` (`cc_index.auto_select`); the plan says which and why.
    """
    from curate.pipeline.sources import cc_index

    source = Source(options.source)
    crawls = match_crawls(options.snapshots, source.crawls())
    select, reason = options.select, f"--select {options.select}"
    if select == cc_index.AUTO:
        select, reason = cc_index.auto_select(options.languages, source, crawls)
    selection, indexes = None, {}
    if select != "full":
        selection = cc_index.Selection.for_run(options.languages, select, options.index_primary_only)
        indexes = cc_index.crawl_indexes(source, crawls)
    units: list[Unit] = []
    listed = {crawl: sample_files(source.warc_files(crawl), options.max_files, options.seed) for crawl in crawls}
    chosen = listed
    if selection is not None:
        chosen = {crawl: cc_index.select_files(source, indexes[crawl], files, selection, map_fn=map_fn,
                                               cache=Output(options.output), fill_cache=fill_cache)
                  for crawl, files in listed.items()}
    slots = worker_slots(options)
    if selection is not None:
        records = unit_size(sum(f.records for files in chosen.values() for f in files),
                            options.index_records_per_unit, slots, MIN_INDEX_RECORDS_PER_UNIT)
    per_unit = unit_size(sum(map(len, chosen.values())), options.files_per_unit, slots)
    for crawl, files in chosen.items():
        if selection is not None:
            for number, group in enumerate(cc_index.group_by_records(files, records)):
                units.append(Unit(f"{crawl}-index-{number:06d}-{fingerprint([f.canonical for f in group])[:8]}",
                                  group))
            continue
        for start in range(0, len(files), per_unit):
            group = tuple(files[start:start + per_unit])
            units.append(Unit(f"{crawl}-{start:06d}-{fingerprint([f.path for f in group])[:8]}", group))
    return Plan(source, crawls, units, select, reason, [f for files in listed.values() for f in files])


def describe_selection(plan: Plan, sample: int = 16) -> str:
    """The run's first line: the selection, why, and the share of the WARCs' bytes it reads (an index selection's
    merged ranges against the listed WARCs' sizes, up to `sample` a crawl, extrapolated)."""
    if plan.select == "full":
        return (f"selection: full ({plan.select_reason}): every record of {len(plan.listed):,} WARC files, "
                f"100 % of their bytes")
    listed = sum(_estimated_bytes(plan.source, [f for f in plan.listed if f.crawl == crawl], sample)
                 for crawl in plan.crawls)
    read = sum(request_bytes(f) for f in plan.files)
    share = f"{read / listed * 100:.1f} %" if listed else "an unknown share"
    return (f"selection: {plan.select} ({plan.select_reason}): {sum(f.records for f in plan.files):,} HTML records "
            f"in {len(plan.files):,} of {len(plan.listed):,} WARC files, ~{_size(read)} of ~{_size(listed)}: "
            f"{share} of the bytes")


def describe_plan(plan: Plan, sample: int = 16) -> str:
    """The selection (`describe_selection`), files, bytes and a cost estimate (sizes of up to `sample` files per
    crawl, extrapolated; pages from the record density of a few files' first MiB, or the index's selected records:
    `sources/estimate.py`)."""
    lines = [describe_selection(plan, sample)]
    total_bytes = documents = 0.0
    for crawl in plan.crawls:
        files = [f for f in plan.files if f.crawl == crawl]
        estimate = _estimated_bytes(plan.source, files, sample)
        if any(f.ranges is not None for f in files):  # an index selection: only the selected records are read
            selected, read = sum(f.records for f in files), sum(request_bytes(f) for f in files)
            total_bytes += read
            documents += selected
            lines.append(f"  {crawl}: {selected:,} of {sum(f.considered for f in files):,} HTML records selected in "
                         f"{len(files):,} WARC files, ~{_size(read)} to read of ~{_size(estimate)}")
            continue
        total_bytes += estimate
        documents += estimate * responses_per_byte(plan.source, files)
        lines.append(f"  {crawl}: {len(files):,} WARC files, ~{_size(estimate)}")
    core_hours = documents / DOCS_PER_CORE_SECOND / 3600
    lines.append(f"  total: {len(plan.files):,} files in {len(plan.units):,} units, ~{_size(total_bytes)} to read,"
                 f" ~{documents:,.0f} HTML pages, ~{core_hours:,.1f} core-hours at {DOCS_PER_CORE_SECOND:.0f} pages/s"
                 f" per core")
    return "\n".join(lines)


def _estimated_bytes(source: Source, files: list[WarcFile], sample: int) -> float:
    """The bytes of `files`: the sizes of up to `sample` of them (asked at once), extrapolated."""
    with ThreadPoolExecutor(max(1, min(sample, len(files)))) as pool:
        sizes = [s for s in pool.map(source.size, [f.path for f in files[:sample]]) if s is not None]
    return sum(sizes) / len(sizes) * len(files) if sizes else 0.0


def _size(count: float) -> str:
    return f"{count / 1e9:,.2f} GB" if count >= 1e9 else f"{count / 1e6:,.1f} MB"


def graph_signature(graph: Graph) -> dict:
    """What a stage-1 fingerprint covers of the graph: the settings that change what stage 1 stores (extraction,
    LID and its threshold, tokenizer, statistics' own parameters, MinHash; never a stage-3 threshold, formatter
    or scorer: `Block.fingerprint`) and the hashes of the models and lists stage-1 blocks use."""
    blocks = [*graph.shared, graph.lid, *(b for g in graph.languages.values() for b in g.stage1)]
    return {
        "shared": [b.fingerprint() for b in graph.shared],
        "lid": graph.lid.fingerprint(),
        "models": {key: value for b in blocks for key, value in sorted(b.provenance().items())},
        "languages": {code: {"min_lid_score": g.min_lid_score, "stage1": [b.fingerprint() for b in g.stage1]}
                      for code, g in graph.languages.items()},
    }


def run(options: RunOptions, graph: Graph | None = None) -> dict[str, dict]:
    """Run every stage; returns the stats of each language (also written to `<out>/<lang>/stats.json`)."""
    begun = time.monotonic()
    graph = graph or build_graph(options.languages, lid=options.lid, min_lid_score=options.lid_min_score,
                                 extractor=options.extractor, prefilter=options.prefilter)
    add_decontamination(graph, options.decontaminate)  # reads the sets and builds their index, once per run
    output = Output(options.output)
    output.check_writable()

    def scan_on_ray(fn, items):  # Ray starts only when an index is scanned (not for a cached selection)
        start_ray(options.num_cpus)
        return ray_map(fn, items)

    parts: dict[str, float] = {}  # the start-up's parts, each from the end of the one before
    lap = _laps(parts, begun)
    plan = make_plan(options, map_fn=scan_on_ray, fill_cache=True)
    lap("plan")
    with RunLock(output):
        print(describe_selection(plan), file=sys.stderr, flush=True)  # the run's first line: what it reads, and why
        output.remove_temporaries()  # what a killed run was writing
        if len(graph.languages) > OVERLAPPED_CHECK_LANGUAGES:  # minutes of tokenizer loads would starve Ray's start
            graph.check()
        import loguru  # noqa: F401  # datatrove's logger: imported in a thread while Ray forks, its lock broke
        with ThreadPoolExecutor(1) as checks:  # the driver's model checks (imports, loads) overlap Ray's start-up
            checked = checks.submit(_timed, graph.check)
            start_ray(options.num_cpus)
            lap("ray")
            parts["checks"] = checked.result()  # in parallel with Ray: counted apart from the sum
            lap("checks_after_ray")
        optouts = optout.prepare(options, plan, graph, output,  # robots.txt table on Ray; blocks into the graph
                                 lambda fn, items: ray_map(fn, items, options.resources.cpus_per_task))
        models = graph.models()
        manifests = Manifests(output, provenance(models))
        lap("optouts_models")
        preflight(graph.blocks(), models, plan.source.location, plan.files[0].path if plan.files else None,
                  options.output)
        stage3_blocks = [b for language in graph.languages.values() for b in language.stage3]
        plan_pool(stage3_blocks, ray.cluster_resources().get("GPU", 0), options.scorer_gpus)  # before any work
        lap("preflight")
        worker_slots(options, remember=True)  # the units' size, for a resume on a machine of another size
        started = time.monotonic()
        startup = started - begun  # plan, model checks, Ray start-up, preflight: the fixed cost of a run
        reused: dict[str, list[int]] = {}  # stage → [units reused, units]
        stage1 = _run_stage1(plan, graph, options, output, manifests, models, reused)
        _check_quarantined(stage1, len(plan.files), options.max_quarantined)
        for code in graph.languages:
            _check_errors(output, options.max_errors, *(_error_counts(m["result"], code) for m in stage1.values()))
        seconds = {"startup": startup, "startup_parts": parts, "stage1": time.monotonic() - started}
        stats = {}
        pool = attach_pool(stage3_blocks, options.scorer_gpus)
        try:
            for code, language in graph.languages.items():
                stats[code] = _run_language(code, language, stage1, options, output, manifests, seconds, reused)
                stats[code]["optout"] = optout.summary(optouts, stage1, output, code, stats[code]["input"]["buckets"])
                previous = output.read_json(output.language(code, "stats.json")) or {}
                if "ablation" in previous:  # `curate ablate` results of this output, kept until rerun
                    stats[code]["ablation"] = previous["ablation"]
                output.write_json(output.language(code, "stats.json"), stats[code])
                write_card(options.output, code)
            output.write_json(output.path(RUN_NAME), {"languages": list(stats), "skipped": graph.skipped,
                                                      "wall_seconds": round(time.monotonic() - begun, 2)})
            write_report(options.output)
        finally:
            detach_pool(stage3_blocks, pool)
    return stats


def _laps(parts: dict[str, float], begun: float):
    """`lap(name)` records the seconds since the previous lap (the first from `begun`) under `name`."""
    last = [begun]

    def lap(name: str) -> None:
        now = time.monotonic()
        parts[name] = round(now - last[0], 3)
        last[0] = now
    return lap


def _timed(fn) -> float:
    started = time.monotonic()
    fn()
    return round(time.monotonic() - started, 3)


def _run_language(code: str, language: LanguageGraph, stage1: dict[str, dict], options: RunOptions, output: Output,
                  manifests: Manifests, seconds: dict[str, float], reused: dict[str, list[int]]) -> dict:
    """Dedup, stage 3, rehydration table and final shards of one language; returns its stats."""
    seconds = dict(seconds)
    started = time.monotonic()
    kept_files = sorted(p for m in stage1.values() for p in m["result"]["kept_files"].get(code, []))
    num_buckets = choose_buckets(code, stage1, options)
    log.info("%s: %d buckets", code, num_buckets)
    clusters = _run_dedup(code, language, kept_files, num_buckets, options, output)
    seconds["dedup"] = time.monotonic() - started
    started = time.monotonic()
    reused = dict(reused)
    decontamination.prepare(code, language.stage3, kept_files, output, options.output,
                            lambda fn, items: ray_map(fn, items, options.resources.cpus_per_task))
    stage3 = _run_bucket_stage(
        "stage3", code, num_buckets, options, output, manifests, reused,
        NodeChecked(Stage3Work(options.output, language.stage3, clusters, language.rehydration_rules,
                               max_errors=options.max_errors),
                    language.stage3, manifests.provenance["models"]),
        inputs=lambda b: tuple(kept_files),
        upstream=sorted(m["fingerprint"] for m in stage1.values()) + [clusters.fingerprint if clusters else ""],
        settings=[repr(b) for b in language.stage3] + [language.rehydration_rules]
        + [sorted(p.items()) for p in (b.provenance() for b in language.stage3)],
    )
    seconds["stage3"] = time.monotonic() - started
    _check_errors(output, options.max_errors, *(m["result"]["counts"] for m in stage3.values()))
    written = {p for m in stage3.values() for p in (m["result"]["kept_file"], m["result"]["removed_file"])}
    _remove_unlisted(output, written,
                     output.language(code, "_work", "stage3", "*.parquet"),
                     output.language(code, "_work", "removed", "stage3", "*.parquet"))
    rehydration = _rehydration(code, stage3, options, output)
    started = time.monotonic()
    final = _run_bucket_stage(
        "final", code, num_buckets, options, output, manifests, reused,
        FinalWork(options.output, rehydration["table"], options.seed, options.materialize, options.shard_bytes),
        inputs=lambda b: tuple(p for p in [stage3[b]["result"]["kept_file"]] if p),
        upstream=sorted(m["fingerprint"] for m in stage3.values()),
        settings=[sorted(rehydration["table"].items()), options.seed, options.materialize, options.shard_bytes],
    )
    _remove_unlisted(output, {p for m in final.values() for p in m["result"]["files"]},
                     output.language(code, "data", "**", "*.parquet"))
    seconds["final"] = time.monotonic() - started
    stats = _language_stats(code, stage1, stage3, final, seconds)
    stats["input"]["buckets"] = num_buckets
    stats["units"] = {stage: {"reused": done, "total": total} for stage, (done, total) in reused.items()}
    computed = [m for m in stage1.values() if not m.get("reused")]
    stats["documents_computed"] = sum(m["result"]["documents_read"] for m in computed)
    # pages this run read itself per second of stage 1 (None when every stage-1 unit was reused)
    stats["documents_per_second"] = (round(stats["documents_computed"] / max(seconds.get("stage1", 0.0), 1e-9), 1)
                                     if computed else None)
    if clusters:
        stats["dedup"] = _dedup_stats(clusters)
    stats["rehydration"] = rehydration
    contamination = decontamination.summary(decontamination.block_of(language.stage3), stage3, output)
    if contamination:
        stats["decontamination"] = contamination
    return stats


def choose_buckets(code: str, stage1: dict[str, dict], options: RunOptions) -> int:
    """The language's bucket count: `options.buckets`, else one per `bucket_bytes` of the Parquet its stage-1
    units wrote (their manifests' `kept_bytes`), at least 1. Chosen after stage 1, so it never changes stage 1."""
    if options.buckets:
        return options.buckets
    written = sum(m["result"].get("kept_bytes", {}).get(code, 0) for m in stage1.values())
    return max(1, -(-written // options.bucket_bytes))


def _run_dedup(code: str, language: LanguageGraph, kept_files: list[str], num_buckets: int, options: RunOptions,
               output: Output) -> dedup.ClusterResult | None:
    """Global dedup of the language over every stage-1 file (resumable: see `dedup.cluster`)."""
    config = language.config.dedup
    if not (config.enabled or config.exact or config.by_url) or not kept_files:
        return None

    def map_fn(fn, items):
        results = ray_map(fn, items, options.resources.cpus_per_task)
        faults.kill_point("during_dedup")
        return results

    log.info("dedup %s: %d stage-1 files", code, len(kept_files))
    with _status(f"dedup {code}: clustering the documents of {len(kept_files):,} stage-1 files"):
        result = dedup.cluster([output.url(p) for p in kept_files], output.url(code, "_work", "dedup"),
                               num_buckets, config, map_fn=map_fn,
                               exclude=[b for b in language.stage3 if b.before_dedup], relative_to=output.root)
    for earlier in output.fs.ls(output.language(code, "_work", "dedup"), detail=False):
        if earlier.rstrip("/").rsplit("/", 1)[-1] != result.fingerprint[:16]:  # a run over other inputs
            output.fs.rm(earlier, recursive=True)
    return result


def _status(message: str):
    from rich.console import Console

    return Console(stderr=True).status(message)


def _dedup_stats(clusters: dedup.ClusterResult) -> dict:
    stats: dict = {"documents": clusters.stats["documents"], "timings": clusters.stats.get("timings", {})}
    for method, values in clusters.stats["methods"].items():
        histogram = dedup.cluster_size_histogram(clusters, method)
        stats[method] = {k: v for k, v in values.items() if k != "histogram"} | {
            "histogram": {str(k): v for k, v in histogram["clusters"].items()},
            "documents_by_size": {str(k): v for k, v in histogram["documents"].items()},
        }
    return stats


def _rehydration(code: str, stage3: dict[int, dict], options: RunOptions, output: Output) -> dict:
    """The rehydration table of the language from its stage-3 filter outcomes (written as
    `<lang>/rehydration/distribution.json` in FineWeb2's format when computed)."""
    counts = merge_filter_outcome_counts(m["result"].get("filter_outcomes", {}) for m in stage3.values())
    method = options.rehydration
    info: dict = {"method": method}
    if method == "removal_rates":
        if not counts:
            info["note"] = "no cluster sizes (dedup off or nothing kept): every document once"
            info["table"] = {1: 1}
            return info
        distribution = removal_rate_distribution_from_counts(counts, min_docs_per_size=options.rehydration_min_docs)
        info["table"] = rehydration_table(method, distribution=distribution, max_repetitions=options.max_repetitions)
        info["max_repetitions"] = options.max_repetitions
        info["distribution"] = distribution.to_fineweb2_dict()
        output.write_bytes(output.language(code, "rehydration", "distribution.json"),
                           distribution_to_json(distribution).encode())
    else:
        info["table"] = rehydration_table(method)
    return info


def _run_stage1(plan: Plan, graph: Graph, options: RunOptions, output: Output, manifests: Manifests,
                models: dict[str, str], reused: dict[str, list[int]]) -> dict[str, dict]:
    reader = WarcReader(limit=options.limit)
    blocks = [*graph.shared, graph.lid, *(b for g in graph.languages.values() for b in g.stage1)]
    work = NodeChecked(Stage1Work(graph, plan.source.location, options.output, reader, options.max_errors), blocks,
                       models)
    settings = [code_version(*_modules(work)), graph_signature(graph), repr(reader)]
    done: dict[str, dict] = {}
    todo: list[Unit] = []
    fingerprints = {}
    for unit in plan.units:
        fingerprints[unit.id] = fingerprint(settings, [f.canonical for f in unit.files])
        manifest = manifests.committed("stage1", unit.id, fingerprints[unit.id])
        if manifest and (options.skip_quarantined or not manifest["result"]["quarantined"]) \
                and not manifest["result"].get("missing"):
            done[unit.id] = {**manifest, "reused": True}  # in memory only: counted in stats["units"]
        else:
            todo.append(unit)
    reused["stage1"] = [len(done), len(plan.units)]
    if done:
        log.info("stage 1: %d of %d units already done", len(done), len(plan.units))
    parents = {u.id: u for u in todo}
    partial: dict[str, list[UnitResult]] = {}

    def parent_of(unit: Unit) -> str:
        return unit.id.split("~")[0]

    def finish(unit_id: str, result: UnitResult) -> None:
        done[unit_id] = manifests.commit("stage1", unit_id, fingerprints[unit_id], result,
                                         files=[f.canonical for f in parents[unit_id].files])
        manifests.record_quarantine(unit_id, result.quarantined)

    def on_result(unit: Unit, result: UnitResult) -> None:
        parent = parent_of(unit)
        if unit.id == parent:
            finish(parent, result)
            return
        partial.setdefault(parent, []).append(result)
        _maybe_finish_parent(parent)

    def _maybe_finish_parent(parent: str) -> None:
        results = partial.get(parent, [])
        if sum(len(r.files) for r in results) == len(parents[parent].files):
            finish(parent, merge_results(parent, results))

    def split(unit: Unit) -> list[Unit] | None:
        if len(unit.files) < 2:
            return None
        middle = len(unit.files) // 2
        return [Unit(f"{unit.id}~a", unit.files[:middle]), Unit(f"{unit.id}~b", unit.files[middle:])]

    def on_quarantine(unit: Unit, error: str) -> None:
        parent = parent_of(unit)
        partial.setdefault(parent, []).append(UnitResult(
            unit.id, files=[f.canonical for f in unit.files],
            quarantined=[f"{f.canonical}: {error}" for f in unit.files]))
        _maybe_finish_parent(parent)

    run_units(work, todo, "stage 1: read, extract, identify", on_result, split, on_quarantine,
              options.resources, docs_of=lambda r: r.documents_read, errors_folder=output.url("_work", "errors"))
    return {u.id: done[u.id] for u in plan.units}


def _run_bucket_stage(stage: str, code: str, num_buckets: int, options: RunOptions, output: Output,
                      manifests: Manifests, reused: dict[str, list[int]], work, inputs, upstream: list[str],
                      settings: list) -> dict[int, dict]:
    done: dict[int, dict] = {}
    todo: list[BucketUnit] = []
    fingerprints: dict[str, str] = {}
    for bucket in range(num_buckets):
        unit = BucketUnit(f"{code}-{bucket:05d}", code, bucket, inputs(bucket), num_buckets)
        fingerprints[unit.id] = fingerprint(code_version(*_modules(work)), stage, code, bucket, num_buckets, upstream,
                                            settings)
        manifest = manifests.committed(stage, unit.id, fingerprints[unit.id])
        if manifest:
            done[bucket] = {**manifest, "reused": True}
        else:
            todo.append(unit)
    reused[stage] = [len(done), num_buckets]

    def on_result(unit: BucketUnit, result: BucketResult) -> None:
        done[unit.bucket] = manifests.commit(stage, unit.id, fingerprints[unit.id], result)

    run_units(work, todo, f"{stage} {code}", on_result, resources=options.resources,
              docs_of=lambda r: r.documents_read, errors_folder=output.url("_work", "errors"))
    for path in output.fs.glob(output.path("_work", "manifests", stage, f"{code}-*.json")):
        bucket = path.rsplit("-", 1)[-1].removesuffix(".json")
        if bucket.isdigit() and int(bucket) >= num_buckets:  # a bucket of an earlier, wider bucketing
            output.fs.rm(path)
    return done


def _modules(work) -> list[str]:
    """The modules a stage's work and its blocks are defined in (what its code digest starts from)."""
    inner = getattr(work, "work", work)
    return [type(inner).__module__, *sorted({type(b).__module__ for b in getattr(work, "blocks", [])})]


def _check_quarantined(stage1: dict[str, dict], files: int, limit: int | None) -> None:
    """Fail the run with one line when more files are quarantined than `limit` (default 1 %, at least 1)."""
    quarantined = [q for m in stage1.values() for q in m["result"]["quarantined"]]
    limit = max(1, files // 100) if limit is None else limit
    if len(quarantined) > limit:
        shown = "; ".join(quarantined[:3]) + ("; …" if len(quarantined) > 3 else "")
        raise UserError(f"{len(quarantined)} of {files} files quarantined, more than --max-quarantined {limit}: "
                        f"{shown}; a rerun retries them (--skip-quarantined leaves them out)")


def _error_counts(result: dict, code: str) -> dict[str, int]:
    """The `error.<block>` counts of a stage-1 result that concern `code` (shared blocks and its own)."""
    return {**result["counts"], **{k: v + result["counts"].get(k, 0)
                                   for k, v in result["language_counts"].get(code, {}).items()}}


def _check_errors(output: Output, budget: int, *counts: dict[str, int]) -> None:
    """Stop the run with one line when blocks raised on more documents than `budget` (a `CodeFault`)."""
    errors: Counter = Counter()
    for values in counts:
        errors.update({k: v for k, v in values.items() if k.startswith("error.")})
    if sum(errors.values()) <= budget:
        return
    reason, _ = errors.most_common(1)[0]
    block = reason.removeprefix("error.")
    saved = sorted(output.fs.glob(output.path("_work", "errors", f"{block}-*.txt")))
    kind = saved[0].rsplit("/", 1)[-1].removesuffix(".txt").removeprefix(f"{block}-") if saved else "an exception"
    raise CodeFault(budget_message(block, kind, sum(errors.values()), budget,
                                   saved[0] if saved else output.path("_work", "errors")))


def _remove_unlisted(output: Output, listed: set[str], *patterns: str) -> None:
    """Delete the files matching `patterns` that no current manifest lists (`listed`): left by an earlier run with
    other thresholds, another bucket count or a wider selection, so readers see each document once."""
    current = {p.lstrip("/") for p in listed if p}
    for pattern in patterns:
        for path in output.fs.glob(pattern):
            if path.lstrip("/") not in current:
                output.fs.rm(path)


def run_summary(stats: dict) -> str:
    """A language's figures for the end-of-run line: the pages this run read and its own throughput (none when
    every stage-1 unit was reused), and how many units an earlier run had committed."""
    units = stats.get("units") or {}
    stage1 = units.get("stage1", {"reused": 0, "total": 0})
    reused, total = sum(u["reused"] for u in units.values()), sum(u["total"] for u in units.values())
    if stats.get("documents_per_second") is None:
        parts = [f"all {stage1['total']:,} stage-1 units reused"]
    else:
        parts = [f"{stats['documents_computed']:,} pages read at {stats['documents_per_second']:,.0f} pages/s"]
        if stage1["reused"]:
            parts.append(f"{stage1['reused']:,} of {stage1['total']:,} stage-1 units reused")
    if reused:
        parts.append(f"{reused:,} of {total:,} units reused")
    return "; ".join(parts)


def _language_stats(code: str, stage1: dict, stage3: dict, final: dict, seconds: dict) -> dict:
    shared: Counter = Counter()
    language: Counter = Counter()
    mix: Counter = Counter()
    documents = 0
    quarantined: list[str] = []
    missing: list[str] = []
    for manifest in stage1.values():
        result = manifest["result"]
        missing += result.get("missing", [])
        shared.update({k: v for k, v in result["counts"].items() if not k.startswith("_")})
        language.update(result["language_counts"].get(code, {}))
        mix.update(result["language_mix"])
        documents += result["documents_read"]
        quarantined += result["quarantined"]
    selection = {k.removeprefix("index."): shared.pop(k)
                 for k in ("index.records_considered", "index.records_selected") if k in shared}
    bytes_read = sum(m["result"].get("bytes_read", 0) for m in stage1.values())
    warc_bytes = sum(m["result"].get("warc_bytes", 0) for m in stage1.values())
    stage3_counts: Counter = Counter()
    for manifest in stage3.values():
        stage3_counts.update(manifest["result"]["counts"])
    per_dump: Counter = Counter()
    for manifest in final.values():
        per_dump.update(manifest["result"]["counts"])
    return {
        "language": code,
        "documents_read": documents,
        "shared": dict(sorted(shared.items())),
        "stage1": dict(sorted(language.items())),
        "stage3": dict(sorted(stage3_counts.items())),
        "released": {"documents": sum(per_dump.values()), "per_dump": dict(sorted(per_dump.items()))},
        "input": {"bytes_read": bytes_read, "warc_bytes": warc_bytes,
                  "bytes_read_share": round(bytes_read / warc_bytes, 6) if warc_bytes else None, **selection},
        "language_mix": dict(mix.most_common()),
        "quarantined": quarantined,
        "missing": sorted(missing),
        "seconds": {k: round(v, 2) if isinstance(v, float) else v for k, v in seconds.items()},
    }

