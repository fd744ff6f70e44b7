"""The global dedup stage of one language: orchestration of the file-based tasks.

`cluster()` runs on the driver and only plans: every step is a list of small picklable task items given to
`map_fn` (builtin `map` semantics: results in order), which runs them wherever it likes — in process,
in a process pool, or as Ray tasks (`pipeline/` wires that). Tasks read and write files under the run's
directory and return small manifests; no signature, edge list or table passes through the driver.

Steps (→ what each writes):

1. map, per group of stage-1 files → LSH / exact / URL spills, by hash partition (`dedup/inputs.py`);
2. band tasks, per range of (band, hash partition) → candidate edges, by node (`dedup/lsh.py`);
3. large-star / small-star rounds until every component is a star, then centres and sizes → cluster
   assignments by output bucket (`dedup/components.py`);
4. exact (and URL) grouping → stars, then the same centres and sizes (`dedup/exact.py`);
5. gather, per range of buckets → `<method>/bucket-NNNNN.parquet` (`dedup/clusters.py`).

Every task streams its partitions in chunks of a quarter of `partition_bytes` and holds one row per distinct
key it reads (`dedup/reduce.py`), so its memory is bounded by the budget whatever the cluster shapes; the
number of tasks of each step follows the bytes it reads.

Resume: the run's directory is keyed by `fingerprint()` (input file identities, config, bucket count);
each task commits with a manifest and is skipped when it is found again; `result.json` commits the whole
stage, and a later call with the same inputs returns it at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence, TypeVar

import fsspec

from curate.blocks.base import Block
from curate.dedup import components, exact
from curate.dedup.clusters import ClusterResult, GatherTask, gather
from curate.dedup.components import StepTask, merge_histograms, run_step
from curate.dedup.exact import GroupTask, group_step
from curate.dedup.inputs import MapTask, read_inputs
from curate.dedup.lsh import BandTask, band_edges
from curate.dedup.plan import Plan
from curate.dedup.shuffle import ASSIGNMENT, ranges
from curate.dedup.storage import Input, Store, input_path
from curate.language_configs.minhash import DedupConfig

log = logging.getLogger("curate")

CODE_VERSION = "dedup-2"  # bump when a change alters the assignments for the same input
DEFAULT_PARTITION_BYTES = 128 << 20  # a task's records in memory (spill buffers, the partitions it sorts)
DEFAULT_TASKS = 8  # tasks per step at least (parallelism); more when the data exceeds their budgets
MAX_PARTITIONS = 1 << 14
# Bytes a streamed (a, b) record costs a task at its peak: its share of the key table (key, min, max, count)
# while two tables merge, next to the record itself.
RECORD_COST = 64
MAX_ROUNDS = 64

T = TypeVar("T")
R = TypeVar("R")
MapFn = Callable[[Callable[[T], R], Iterable[T]], Iterable[R]]


def input_identity(item: Input) -> dict[str, Any]:
    """What identifies a stage-1 input's content cheaply: its path, size and a digest of its Parquet footer
    (schema, row counts and column statistics: a rewritten file gets a new one), and its row groups when it is
    part of a file."""
    path, groups = input_path(item)
    fs, inner = fsspec.core.url_to_fs(path)
    size = int(fs.size(inner))
    tail = fs.cat_file(inner, start=max(size - 8, 0), end=size)
    footer_length = int.from_bytes(tail[:4], "little") if len(tail) == 8 and tail[4:] == b"PAR1" else 0
    footer = fs.cat_file(inner, start=max(size - 8 - footer_length, 0), end=size)
    identity = {"path": path, "size": size, "footer": hashlib.blake2b(footer, digest_size=16).hexdigest()}
    return identity if groups is None else {**identity, "row_groups": [groups[0], groups[-1] + 1] if groups else []}


def fingerprint(
    stage1_files: Sequence[Input],
    config: DedupConfig,
    num_buckets: int,
    identities: Sequence[dict] | None = None,
    exclude: Sequence[Block] = (),
) -> str:
    """sha256 over the sorted identities of the input files, the dedup config, the bucket count, the exclusions
    and the code version: what stage-3 units chain into theirs (`identities` from `input_identity`, if read)."""
    identities = list(identities) if identities is not None else [input_identity(p) for p in stage1_files]
    payload = {
        "code": CODE_VERSION,
        "config": dataclasses.asdict(config),
        "num_buckets": num_buckets,
        "inputs": sorted(identities, key=lambda i: (i["path"], i.get("row_groups", []))),
        "exclude": [str(block.fingerprint()) for block in exclude],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _row_count(item: Input) -> int:
    import pyarrow.parquet as pq

    from curate.dedup.storage import open_input

    path, groups = input_path(item)
    with open_input(path) as handle:
        metadata = pq.ParquetFile(handle).metadata
    return metadata.num_rows if groups is None else sum(metadata.row_group(g).num_rows for g in groups)


@dataclass
class _Steps:
    """Runs the steps of one dedup run through `map_fn`, and keeps their timings and task counts."""

    plan: Plan
    map_fn: MapFn
    min_tasks: int
    documents: int
    timings: dict = field(default_factory=lambda: {"tasks": 0, "tasks_skipped": 0})

    def run(self, label: str, fn: Callable[[T], dict], items: list[T]) -> list[dict]:
        started = time.monotonic()
        results = list(self.map_fn(fn, items)) if items else []
        self.timings[label] = round(self.timings.get(label, 0.0) + time.monotonic() - started, 3)
        self.timings["tasks"] += len(results)
        self.timings["tasks_skipped"] += sum(1 for r in results if r.get("skipped"))
        return results

    def ranges(self, partitions: int, records: int, itemsize: int = RECORD_COST) -> list[tuple[int, int]]:
        """Task ranges over `partitions` for `records` records: ≥ min_tasks, ≤ budget each."""
        return ranges(partitions, records * itemsize, self.plan.budget_bytes, min(self.min_tasks, partitions))

    def path(self, name: str) -> str:
        return self.plan.store.path(name)

    def gather(self, method: str, runs: tuple[str, ...], records: int) -> None:
        step = f"gather-{method}"
        items = [
            GatherTask(self.plan, method, step, runs, lo, hi, self.path(method))
            for lo, hi in self.ranges(self.plan.num_buckets, records, ASSIGNMENT.itemsize)
        ]
        self.run(step, gather, items)

    def components(self, kind: str, step: str, runs: tuple[str, ...], records: int, output: str) -> list[dict]:
        """One component step; tasks sized by its records and by its nodes' table rows (≤ 2 per document)."""
        items = [
            StepTask(self.plan, kind, step, runs, lo, hi, self.path(output))
            for lo, hi in self.ranges(self.plan.partitions, max(records, 2 * self.documents))
        ]
        return self.run("components", run_step, items)

    def groups(self, kind: str, step: str, runs: tuple[str, ...], spans, removed_by=()) -> list[dict]:
        items = [GroupTask(self.plan, kind, step, runs, lo, hi, self.path(step), removed_by) for lo, hi in spans]
        return self.run(step.split("-")[0], group_step, items)  # timings under "exact" / "url"


def _runs(results: list[dict], key: str | None = None) -> tuple[str, ...]:
    runs: list[str] = []
    for result in results:
        runs.extend(result["runs"][key] if key else result["runs"])
    return tuple(runs)


def cluster(
    stage1_files: Sequence[Input],
    work_dir: str,
    num_buckets: int,
    config: DedupConfig,
    map_fn: MapFn = map,
    num_tasks: int | None = None,
    partition_bytes: int = DEFAULT_PARTITION_BYTES,
    keep_intermediate: bool = False,
    exclude: Sequence[Block] = (),
    relative_to: str | None = None,
) -> ClusterResult:
    """Deduplicate the documents of `stage1_files` globally; returns where the assignments are.

    stage1_files: Parquet files (local paths or fsspec URLs), or (file, first row group, stop row group) parts of
        them, with `doc_key` (or `id`) and the columns the enabled methods need: `minhash_bands` (MinHash),
        `text_hash` (exact), `url` (URL dedup).
    work_dir: where the run's directory `<fingerprint[:16]>/` goes (shared storage on a cluster).
    num_buckets: the output bucketing (`blocks.keys.buckets_of`), normally stage 1's.
    map_fn: runs a step's tasks, `map` semantics (results in input order): `map`, a process pool's `map`,
        or one that submits Ray tasks.
    num_tasks: tasks per step at least (default 8, fewer for tiny inputs); more are used when a step's data
        exceeds `num_tasks × partition_bytes` (the map step: as many as the input bytes need, up to one per file).
    partition_bytes: memory budget of a task's records (spill buffers, the partitions it sorts).
    keep_intermediate: keep the spill files (they are removed once the result is committed).
    exclude: blocks reading `url` (takedown lists, `Block.before_dedup`): the documents they drop take no part,
        as if never crawled, so a listed page is never the one kept for its unlisted copies.
    relative_to: a folder above the inputs (the output root): the fingerprint names the inputs relative to it,
        so a moved or copied output keeps its dedup result.
    """
    if num_buckets < 1:
        raise ValueError(f"num_buckets must be at least 1, got {num_buckets}")
    files = sorted(dict.fromkeys(p if isinstance(p, str) else tuple(p) for p in stage1_files),
                   key=lambda p: (p, -1, -1) if isinstance(p, str) else p)
    identities = [input_identity(p) for p in files]
    if relative_to:
        prefix = relative_to.rstrip("/") + "/"
        identities = [{**i, "path": i["path"].removeprefix(prefix)} for i in identities]
    key = fingerprint(files, config, num_buckets, identities, exclude)
    store = Store(f"{work_dir.rstrip('/')}/{key[:16]}")
    result_path = store.path("result.json")
    done = store.read_json(result_path)
    if done is not None:
        problems = store.damaged(done) if "outputs" in done else ["no file list (an older curate)"]
        if not problems:
            return dataclasses.replace(ClusterResult.from_json(done), root=store.root)  # wherever the output is now
        log.warning("dedup %s: %s; clustering again", key[:16], "; ".join(problems[:3]))
        store.remove(store.base)  # an assignment file is gone or damaged: cluster again from the start

    methods = tuple(m for m, on in (("exact", config.exact), ("minhash", config.enabled), ("url", config.by_url)) if on)
    documents = sum(_row_count(p) for p in files)
    plan_path = store.path("plan.json")
    planned = store.read_json(plan_path)
    if planned is not None:  # a resumed run keeps the partitioning its spills were written with
        partitions = int(planned["partitions"])
    else:  # a band's records (16 bytes a document) in partitions of about a quarter of the budget
        partitions = max(1, min(MAX_PARTITIONS, math.ceil(4 * documents * 16 / partition_bytes)))
        store.write_json(plan_path, {"partitions": partitions, "fingerprint": key, "inputs": identities})
    plan = Plan(
        store, partitions, num_buckets, config.bands, partition_bytes, config.enabled, config.exact, config.by_url,
        tuple(exclude),
    )
    steps = _Steps(plan, map_fn, num_tasks or DEFAULT_TASKS, documents)
    stats: dict = {"documents": documents, "methods": {}, "partitions": partitions, "timings": steps.timings}

    # 1. map: read the stage-1 files once, in as many tasks as their bytes need (at most one per file)
    input_bytes = sum(i["size"] for i in identities)
    count = max(1, min(len(files), max(steps.min_tasks, -(-input_bytes // partition_bytes))))
    mapped = steps.run("map", read_inputs, [MapTask(plan, tuple(files[i::count])) for i in range(count)])
    for name in ("signatures", "text_hashes", "urls", "excluded"):
        stats[name] = sum(r["counts"].get(name, 0) for r in mapped)
    stats["documents"] -= stats["excluded"]  # what was clustered (singletons are counted from it)
    if config.enabled:
        stats["methods"]["minhash"] = _minhash(steps, _runs(mapped, "lsh"), stats["signatures"])
    if config.exact:
        stats["methods"]["exact"] = _exact(steps, _runs(mapped, "exact"), stats["text_hashes"])
    if config.by_url:
        removed_by = tuple(store.path(m) for m in ("minhash", "exact") if m in methods)
        stats["methods"]["url"] = _url(steps, _runs(mapped, "url"), stats["urls"], removed_by)

    result = ClusterResult(key, store.root, num_buckets, methods, stats)
    store.commit(result_path, result.to_json(),
                 [result.bucket_file(m, b) for m in methods for b in range(num_buckets)])
    if not keep_intermediate:
        for entry in store.fs.ls(store.base, detail=False):
            if entry.rstrip("/").rsplit("/", 1)[-1] not in {*methods, "result.json", "plan.json"}:
                store.remove(entry)
    return result


def _minhash(steps: _Steps, lsh_runs: tuple[str, ...], signatures: int) -> dict:
    """Steps 2–3 and the gather of MinHash: band edges, component rounds, centres, sizes."""
    plan = steps.plan
    slots = plan.bands * plan.partitions
    items = [
        BandTask(plan, lsh_runs, lo, hi, steps.path("cc-000-large"))
        for lo, hi in steps.ranges(slots, signatures * plan.bands)
    ]
    edges = steps.run("lsh", band_edges, items)
    candidates = sum(r["edges"] for r in edges)
    runs, records = _runs(edges), 2 * candidates
    for rounds in range(1, MAX_ROUNDS + 1):
        large, small, following = (f"cc-{rounds - 1:03d}-large", f"cc-{rounds - 1:03d}-small", f"cc-{rounds:03d}-large")
        stars = steps.components(components.LARGE, large, runs, records, small)
        if sum(r["violations"] for r in stars) == 0:
            break  # every component is a star: the large-star output is (leaf, centre)
        reduced = steps.components(
            components.SMALL, small, _runs(stars), sum(r["records"] for r in stars), following
        )
        runs, records = _runs(reduced), sum(r["records"] for r in reduced)
    else:
        raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")
    histogram = _clusters(steps, "minhash", _runs(stars), sum(r["records"] for r in stars))
    return _method_stats(histogram) | {"candidate_edges": candidates, "rounds": rounds}


def _clusters(steps: _Steps, method: str, star_runs: tuple[str, ...], leaves: int) -> dict[str, int]:
    """(leaf, centre) edges of stars → assignments of `method` by bucket; its cluster-size histogram."""
    centers = steps.components(components.CENTERS, f"{method}-centers", star_runs, leaves, f"{method}-centers")
    leaves = sum(r["records"] for r in centers)
    sizes = steps.components(components.SIZES, f"{method}-sizes", _runs(centers), leaves, f"{method}-sizes")
    steps.gather(method, _runs(sizes), 2 * leaves)
    return merge_histograms([r["histogram"] for r in sizes])


def _exact(steps: _Steps, runs: tuple[str, ...], records: int) -> dict:
    grouped = steps.groups(exact.GROUPS, "exact-groups", runs, steps.ranges(steps.plan.partitions, records))
    return _method_stats(_clusters(steps, "exact", _runs(grouped), sum(r["records"] for r in grouped)))


def _url(steps: _Steps, runs: tuple[str, ...], records: int, removed_by: tuple[str, ...]) -> dict:
    """URL groups among the documents the other methods keep (see `dedup/exact.py`)."""
    plan = steps.plan
    spans = steps.ranges(plan.partitions, records)
    candidates = steps.groups(exact.CANDIDATES, "url-candidates", runs, spans)
    records = sum(r["records"] for r in candidates)
    spans = steps.ranges(plan.num_buckets, records)
    survivors = steps.groups(exact.SURVIVORS, "url-survivors", _runs(candidates), spans, removed_by)
    records = sum(r["records"] for r in survivors)
    grouped = steps.groups(exact.GROUPS, "url-groups", _runs(survivors), steps.ranges(plan.partitions, records))
    return _method_stats(_clusters(steps, "url", _runs(grouped), sum(r["records"] for r in grouped)))


def _method_stats(histogram: dict[str, int]) -> dict:
    """Counts of one method: clusters (of ≥ 2), documents in them, and its non-representatives."""
    clusters = sum(histogram.values())
    clustered = sum(int(size) * count for size, count in histogram.items())
    return {"histogram": histogram, "clusters": clusters, "clustered": clustered, "removed": clustered - clusters}
