"""`curate run` as a Python API: plan units from a source, then run the stages on Ray, resumably.

Each stage's unit commits a manifest (`_work/manifests/<stage>/<unit>.json`) holding its fingerprint,
the files it wrote and its counts. A rerun reuses every unit whose fingerprint still matches and redoes
the rest; fingerprints chain (a stage-3 bucket's fingerprint covers the fingerprints of the stage-1
units it read), so a run killed at any point and rerun gives the same final output. The stages run through
`driver.py` (`drive`): stage 1, each language's dedup, then stage 3 and the final stage of every language at once.
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
from curate.blocks.warc import WarcReader
from curate import dedup
from curate.pipeline.execution.driver import (TASK_BYTES, BucketStage, RunStats, Stage1, StageCounts, StageRun,
                                              in_driver, modules, run_bucket_stage, run_stage1)
from curate.pipeline.execution.executor import Display, ray_map, start_ray
from curate.pipeline.execution import decontamination, optout
from curate.pipeline.execution.scorer_pool import attach_pool, detach_pool, plan_pool
from curate.pipeline.execution.graph import Graph, LanguageGraph, add_decontamination, build_graph
from curate.pipeline.execution.nodes import WARM_LANGUAGES, NodeChecked, preflight, warm_workers
from curate.pipeline.publishing.report import RUN_NAME
from curate.errors import UserError
from curate.pipeline.execution.provenance import code_version, fingerprint, provenance
from curate.pipeline.sources.crawls import Source, WarcFile, match_crawls, sample_files
from curate.pipeline.sources.estimate import request_bytes, responses_per_byte
from curate.pipeline.execution.stage1 import CodeFault, Stage1Work, Unit, budget_message
from curate.pipeline.execution.stages import FinalWork, Stage3Work
from curate.pipeline.execution.parts import Part, language_parts
from curate.pipeline.execution.regroup import RegroupWork, bucket_inputs, plan_groups
from curate.pipeline.execution.options import BUCKET_BYTES, Resources, RunOptions  # noqa: F401 (the API's names)
from curate.pipeline.execution.storage import Manifests, Output, RunLock
from curate.rebalancing import (distribution_to_json, merge_filter_outcome_counts,
                         rehydration_table, removal_rate_distribution_from_counts)

log = logging.getLogger("curate")

# Languages whose dedup (and decontamination counts) run at once, each in a driver thread.
DEDUP_THREADS = 8

# Measured on this project's benchmark machine (README, performance): what a plan's cost estimate uses.
DOCS_PER_CORE_SECOND = 26.0  # whole pipeline on ~100 KB pages (benchmarks/e2e.py, 16×)


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
# index selections: a unit's own cost (~11 ms in a warm worker) is ~1 % of 16 full-size pages' extraction; a larger
# floor left a small selection (77 records) to one worker while the other idled
MIN_INDEX_RECORDS_PER_UNIT = 16


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


def run(options: RunOptions, graph: Graph | None = None, display: Display | None = None) -> RunStats:
    """Run every stage; returns each language's stats (also written to `<out>/<lang>/stats.json`, the run's
    record to `<out>/run.json`). Progress goes to `display` (default: log lines only). The dataset cards and the
    report are the caller's (`curate.pipeline.publishing.documents.write_documents`; `curate run` writes them)."""
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
    warming = _warm_stage1(graph, options) if ray.is_initialized() else []  # held until stage 1 ends
    plan = make_plan(options, map_fn=scan_on_ray, fill_cache=True)
    lap("plan")
    with RunLock(output):
        print(describe_selection(plan), file=sys.stderr, flush=True)  # the run's first line: what it reads, and why
        output.remove_temporaries()  # what a killed run was writing
        import loguru  # noqa: F401  # datatrove's logger: imported in a thread while Ray forks, its lock broke
        with ThreadPoolExecutor(1) as checks:  # the driver's model checks (imports, loads) overlap Ray's start-up
            checked = checks.submit(_timed, graph.check)
            start_ray(options.num_cpus)
            lap("ray")
            warming = warming or _warm_stage1(graph, options)
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
        startup = time.monotonic() - begun  # plan, model checks, Ray start-up, preflight: the fixed cost of a run
        stage1_run = _run_stage1(plan, graph, options, output, manifests, models, display)
        stage1 = stage1_run.done
        _check_quarantined(stage1, len(plan.files), options.max_quarantined)
        for code in graph.languages:
            _check_errors(output, options.max_errors, *(_error_counts(m["result"], code) for m in stage1.values()))
        seconds = {"startup": startup, "startup_parts": parts, "stage1": stage1_run.counts.seconds}
        counts = {"stage1": stage1_run.counts}
        pool = attach_pool(stage3_blocks, options.scorer_gpus)
        try:
            stats = _run_languages(graph, stage1, options, output, manifests, seconds, counts, display)
            for code in graph.languages:
                stats[code]["optout"] = optout.summary(optouts, stage1, output, code, stats[code]["input"]["buckets"])
                previous = output.read_json(output.language(code, "stats.json")) or {}
                if "ablation" in previous:  # `curate ablate` results of this output, kept until rerun
                    stats[code]["ablation"] = previous["ablation"]
                output.write_json(output.language(code, "stats.json"), stats[code])
            wall = round(time.monotonic() - begun, 2)
            output.write_json(output.path(RUN_NAME), {
                "languages": list(stats), "skipped": graph.skipped, "wall_seconds": wall,
                "stages": {name: dataclasses.asdict(c) for name, c in counts.items()}})
        finally:
            detach_pool(stage3_blocks, pool)
    return RunStats(stats, list(graph.skipped), wall, counts)


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


@dataclass
class _Prepared:
    """A language's inputs to stage 3: its stage-1 parts, bucket count, dedup result and dedup seconds."""

    kept_parts: list[Part]
    kept_bytes: int
    buckets: int
    clusters: dedup.ClusterResult | None
    seconds: float


def _prepare(code: str, language: LanguageGraph, stage1: dict[str, dict], options: RunOptions,
             output: Output) -> _Prepared:
    """A language's buckets, dedup and decontamination counts (in a driver thread: `_run_languages`). A small
    language runs them in this thread, a larger one on Ray tasks."""
    started = time.monotonic()
    kept_parts = language_parts(stage1, code)
    kept_bytes = sum(m["result"].get("kept_bytes", {}).get(code, 0) for m in stage1.values())
    num_buckets = choose_buckets(code, stage1, options)
    log.info("%s: %d buckets", code, num_buckets)

    def map_fn(fn, items):
        if kept_bytes < TASK_BYTES:
            return list(map(fn, items))
        return ray_map(fn, items, options.resources.cpus_per_task)

    clusters = _run_dedup(code, language, kept_parts, num_buckets, output, map_fn)
    decontamination.prepare(code, language.stage3, kept_parts, output, options.output, map_fn)
    return _Prepared(kept_parts, kept_bytes, num_buckets, clusters, time.monotonic() - started)


def _run_languages(graph: Graph, stage1: dict[str, dict], options: RunOptions, output: Output, manifests: Manifests,
                   seconds: dict, counts: dict[str, StageCounts], display: Display | None) -> dict[str, dict]:
    """Dedup of each language (several at once), then stage 3, the rehydration tables and the final stage of every
    language at once (`BucketStage`); returns each language's stats."""
    codes = list(graph.languages)
    prepared = dict(zip(codes, in_driver(
        lambda code: _prepare(code, graph.languages[code], stage1, options, output), codes,
        "dedup", DEDUP_THREADS, display)))
    upstream = sorted(m["fingerprint"] for m in stage1.values())
    errors = output.url("_work", "errors")
    inputs, regrouped = _regroup(prepared, upstream, options, output, manifests, counts, display)
    stage3_run = run_bucket_stage(BucketStage(
        "stage3",
        works={code: NodeChecked(Stage3Work(options.output, language.stage3, prepared[code].clusters,
                                            language.rehydration_rules, max_errors=options.max_errors),
                                 language.stage3, manifests.provenance["models"])
               for code, language in graph.languages.items()},
        buckets={code: p.buckets for code, p in prepared.items()},
        inputs=inputs,
        size=lambda unit: prepared[unit.language].kept_bytes // unit.num_buckets,
        upstream={code: upstream + [p.clusters.fingerprint if p.clusters else ""] + regrouped.get(code, [])
                  for code, p in prepared.items()},
        settings={code: [repr(b) for b in language.stage3] + [language.rehydration_rules]
                  + [sorted(p.items()) for p in (b.provenance() for b in language.stage3)]
                  for code, language in graph.languages.items()},
    ), manifests, options.resources, display, errors)
    stage3, counts["stage3"] = stage3_run
    rehydration = {}
    for code in codes:
        _check_errors(output, options.max_errors, *(m["result"]["counts"] for m in stage3[code].values()))
        written = {p for m in stage3[code].values() for p in (m["result"]["kept_file"], m["result"]["removed_file"])}
        _remove_unlisted(output, written,
                         output.language(code, "_work", "stage3", "*.parquet"),
                         output.language(code, "_work", "removed", "stage3", "*.parquet"))
        rehydration[code] = _rehydration(code, stage3[code], options, output)
    final_settings = [options.seed, options.materialize, options.shard_bytes]
    final, counts["final"] = run_bucket_stage(BucketStage(
        "final",
        works={code: FinalWork(options.output, rehydration[code]["table"], options.seed, options.materialize,
                               options.shard_bytes) for code in codes},
        buckets={code: p.buckets for code, p in prepared.items()},
        inputs=lambda code, bucket: tuple(p for p in [stage3[code][bucket]["result"]["kept_file"]] if p),
        size=lambda unit: stage3[unit.language][unit.bucket]["result"].get("kept_bytes", 0),
        upstream={code: sorted(m["fingerprint"] for m in stage3[code].values()) for code in codes},
        settings={code: [sorted(rehydration[code]["table"].items()), *final_settings] for code in codes},
    ), manifests, options.resources, display, errors)
    stats = {}
    for code in codes:
        _remove_unlisted(output, {p for m in final[code].values() for p in m["result"]["files"]},
                         output.language(code, "data", "**", "*.parquet"))
        times = {**seconds, "dedup": prepared[code].seconds, "stage3": counts["stage3"].seconds,
                 "final": counts["final"].seconds}
        stats[code] = _language_stats(code, graph.languages[code], stage1, stage3[code], final[code], times,
                                      prepared[code], rehydration[code], counts["stage1"], output)
    return stats


def _regroup(prepared: dict[str, _Prepared], upstream: list[str], options: RunOptions, output: Output,
             manifests: Manifests, counts: dict[str, StageCounts], display: Display | None):
    """(`inputs(code, bucket)`: each bucket's stage-3 parts, each language's regroup fingerprints): a language of one
    bucket reads its stage-1 parts whole; the rows of a language of more are regrouped by bucket first
    (`regroup.py`), every such language in one `BucketStage` whose units are its regroup tasks."""
    groups = {code: plan_groups(p.kept_parts) for code, p in prepared.items() if p.buckets > 1}
    for code, p in prepared.items():
        if code not in groups:  # an earlier run's regrouping (of more buckets) is of no use: gone, manifests too
            _remove_unlisted(output, set(), output.language(code, "_work", "regroup", "*.parquet"),
                             output.path("_work", "manifests", "regroup", f"{code}-*.json"))
    done: dict[str, dict[int, dict]] = {}
    if groups:
        done, counts["regroup"] = run_bucket_stage(BucketStage(
            "regroup",
            works={code: RegroupWork(options.output, prepared[code].buckets) for code in groups},
            buckets={code: len(tasks) for code, tasks in groups.items()},
            inputs=lambda code, task: groups[code][task],
            size=lambda unit: sum(p.bytes for p in groups[unit.language][unit.bucket]),
            upstream={code: upstream for code in groups},
            settings={code: [prepared[code].buckets, [[output.relative(p.path), p.start, p.stop]
                                                      for p in prepared[code].kept_parts]] for code in groups},
        ), manifests, options.resources, display, output.url("_work", "errors"))
        for code in groups:
            _remove_unlisted(output, {f for m in done[code].values() for f in m["result"]["files"]},
                             output.language(code, "_work", "regroup", "*.parquet"))

    def inputs(code: str, bucket: int) -> tuple:
        return bucket_inputs(done[code], bucket) if code in done else tuple(prepared[code].kept_parts)
    return inputs, {code: sorted(m["fingerprint"] for m in done[code].values()) for code in done}


def choose_buckets(code: str, stage1: dict[str, dict], options: RunOptions) -> int:
    """The language's bucket count: `options.buckets`, else one per `bucket_bytes` of the Parquet its stage-1
    units wrote (their manifests' `kept_bytes`), at least 1. Chosen after stage 1, so it never changes stage 1."""
    if options.buckets:
        return options.buckets
    written = sum(m["result"].get("kept_bytes", {}).get(code, 0) for m in stage1.values())
    return max(1, -(-written // options.bucket_bytes))


def _run_dedup(code: str, language: LanguageGraph, kept_files: list[Part], num_buckets: int, output: Output,
               map_fn) -> dedup.ClusterResult | None:
    """Global dedup of the language over its stage-1 parts (resumable: see `dedup.cluster`)."""
    config = language.config.dedup
    if not (config.enabled or config.exact or config.by_url) or not kept_files:
        return None

    def killable(fn, items):
        results = map_fn(fn, items)
        faults.kill_point("during_dedup")
        return results

    log.info("dedup %s: %d stage-1 files", code, len(kept_files))
    result = dedup.cluster([(output.url(p.path), p.start, p.stop) for p in kept_files],
                           output.url(code, "_work", "dedup"),
                           num_buckets, config, map_fn=killable,
                           exclude=[b for b in language.stage3 if b.before_dedup], relative_to=output.root)
    for earlier in output.fs.ls(output.language(code, "_work", "dedup"), detail=False):
        if earlier.rstrip("/").rsplit("/", 1)[-1] != result.fingerprint[:16]:  # a run over other inputs
            output.fs.rm(earlier, recursive=True)
    return result


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


def _warm_stage1(graph: Graph, options: RunOptions) -> list:
    """Stage 1's workers warm its blocks while the driver plans and checks (`warm_workers`); the languages' own
    blocks (word tokenizers) only for a run of a few languages."""
    blocks = [*graph.shared, graph.lid]
    if len(graph.languages) <= WARM_LANGUAGES:
        blocks += [b for g in graph.languages.values() for b in g.stage1]
    return warm_workers(blocks, options.resources.cpus_per_task)


def _run_stage1(plan: Plan, graph: Graph, options: RunOptions, output: Output, manifests: Manifests,
                models: dict[str, str], display: Display | None) -> StageRun:
    reader = WarcReader(limit=options.limit)
    blocks = [*graph.shared, graph.lid, *(b for g in graph.languages.values() for b in g.stage1)]
    work = NodeChecked(Stage1Work(graph, plan.source.location, options.output, reader, options.max_errors), blocks,
                       models)
    settings = [code_version(*modules(work)), graph_signature(graph), repr(reader)]
    stage = Stage1(work, plan.units, settings, options.skip_quarantined)
    return run_stage1(stage, manifests, options.resources, display, output.url("_work", "errors"))


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


def _language_stats(code: str, language_graph: LanguageGraph, stage1: dict, stage3: dict, final: dict, seconds: dict,
                    prepared: _Prepared, rehydration: dict, stage1_counts: StageCounts, output: Output) -> dict:
    """A language's `stats.json`: its counts from the manifests of every stage, timings, dedup, rehydration."""
    stats = _counted(code, stage1, stage3, final, seconds)
    stats["input"]["buckets"] = prepared.buckets
    stats["units"] = {"stage1": {"reused": stage1_counts.reused, "total": stage1_counts.total},
                      **{stage: {"reused": sum(1 for m in done.values() if m.get("reused")), "total": len(done)}
                         for stage, done in (("stage3", stage3), ("final", final))}}
    computed = [m for m in stage1.values() if not m.get("reused")]
    stats["documents_computed"] = sum(m["result"]["documents_read"] for m in computed)
    # pages this run read itself per second of stage 1 (None when every stage-1 unit was reused)
    stats["documents_per_second"] = (round(stats["documents_computed"] / max(seconds.get("stage1", 0.0), 1e-9), 1)
                                     if computed else None)
    if prepared.clusters:
        stats["dedup"] = _dedup_stats(prepared.clusters)
    stats["rehydration"] = rehydration
    contamination = decontamination.summary(decontamination.block_of(language_graph.stage3), stage3, output)
    if contamination:
        stats["decontamination"] = contamination
    return stats


def _counted(code: str, stage1: dict, stage3: dict, final: dict, seconds: dict) -> dict:
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

