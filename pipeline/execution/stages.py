"""Stages after dedup, each a unit of work per bucket of one language.

Stage 3 reads one bucket's rows from every stage-1 file, keeps one row of each record read more than once
(the same WARC listed twice, overlapping inputs: `dedup.same_record`), applies the dedup assignments of that
bucket (cluster ids and sizes; non-representatives removed), then the language's stage-3 blocks (filters on
stored statistics, formatters, scorers: a scorer's scores are kept under `_work/scores/` by doc_key and
`Scorer.score_key`, so a rerun with other thresholds scores no document again), writes kept and removed rows, and counts per cluster size the
documents the filters kept and removed (the rehydration statistics). The final stage writes the released
shards `data/<bucket>-<piece>.parquet`: each document with its `weight` (repetitions from the rehydration
table), in a seeded shuffle. A bucket is a hash sample of the language's documents over every selected crawl,
so every shard, and any prefix of it, holds the crawls in proportion (`dump` says which).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

import numpy as np

from curate.blocks import faults
from curate.blocks.base import DROP_REASON, Block, Scorer, mark_dropped, set_column, split_dropped
from curate.blocks.keys import DOC_KEY, repeated_keys
from curate.blocks.minhash import MINHASH_BANDS, TEXT_HASH
from curate.dedup import ClusterResult, apply_dedup
from curate.pipeline.execution.stage1 import BUCKET, _concat, _run_block
from curate.pipeline.execution.storage import Output
from curate.rebalancing import count_filter_outcomes, repetitions_for_cluster_sizes

CLUSTER_SIZE = "minhash_cluster_size"
SAME_RECORD = "dedup.same_record"
SHARD_BYTES = 500_000_000  # a released shard's target size (FineWeb2 publishes ~500 MB Parquet files)
WEIGHT = "weight"
# Columns only stage 3 needs: not written past it.
DEDUP_INPUTS = (MINHASH_BANDS, TEXT_HASH)
# Internal columns kept under _work/ (with every `stat_*` filter statistic) but not released.
RELEASE_DROP = ("bucket", "doc_key", "lid_label", "drop_reason", "exact_cluster_id", "exact_cluster_size",
                "url_cluster_id", "url_cluster_size")


@dataclass(frozen=True)
class BucketUnit:
    """One bucket of one language, and the files it reads."""

    id: str
    language: str
    bucket: int
    inputs: tuple[str, ...]


@dataclass
class BucketResult:
    unit_id: str
    kept_file: str = ""
    removed_file: str = ""
    files: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    documents_read: int = 0
    seconds: float = 0.0
    filter_outcomes: dict[str, list[int]] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    """Stage 3: each rule's threshold as this unit applied it (`curate inspect` shows the run's, not today's)."""
    scores: dict[str, list[int]] = field(default_factory=dict)  # scorer: [scores reused, documents scored]


def read_bucket(output: Output, paths: tuple[str, ...], bucket: int) -> pa.Table:
    """Rows of `bucket` from stage files (row groups of other buckets are skipped by their statistics)."""
    tables = [output.read_parquet([p], filters=[(BUCKET, "=", bucket)]) for p in paths]
    return _concat(tables)


@dataclass
class Stage3Work:
    """Apply dedup and a language's stage-3 blocks to one bucket.

    `dedup`: the language's dedup result (None: dedup off). `rehydration_rules`: names of the blocks whose
    removals count as "removed by the filters" in the rehydration statistics."""

    output: str
    blocks: list[Block]
    dedup: ClusterResult | None = None
    rehydration_rules: tuple[str, ...] = ()

    def run(self, unit: BucketUnit) -> BucketResult:
        started = time.monotonic()
        output = Output(self.output)
        rows = read_bucket(output, unit.inputs, unit.bucket)
        result = BucketResult(unit.id, documents_read=rows.num_rows)
        result.thresholds = {rule.reason: threshold for block in self.blocks if hasattr(block, "checks")
                             for rule, threshold in block.checks()}
        counts: Counter = Counter()
        removed = []
        if rows.num_rows:  # a record's copies share its doc_key, hence its bucket: the first one read stays
            rows = mark_dropped(rows, repeated_keys(rows[DOC_KEY].to_numpy()), SAME_RECORD)
            if self.dedup is not None:
                rows = apply_dedup(rows, self.dedup.load(unit.bucket))
            rows, dropped = split_dropped(rows)
            counts.update(dropped[DROP_REASON].to_pylist())
            removed.append(dropped)
        rows = rows.drop_columns([c for c in DEDUP_INPUTS if c in rows.column_names])
        deduplicated, by_rules = rows, []
        for block in self.blocks:
            if not rows.num_rows:
                break
            if isinstance(block, Scorer):
                rows, scored = cached_scores(output, unit, block, rows)
                result.scores[block.name] = [rows.num_rows - scored, scored]
                rows, dropped = split_dropped(block.decide(rows))
                counts.update(dropped[DROP_REASON].to_pylist())
            else:
                rows, dropped = _run_block(block, rows, counts)
            if dropped.num_rows:
                removed.append(dropped)
                if block.name in self.rehydration_rules:
                    by_rules.append(dropped[DOC_KEY])
        counts["kept"] = rows.num_rows
        result.counts = dict(counts)
        result.filter_outcomes = filter_outcomes(deduplicated, by_rules)
        if rows.num_rows:
            result.kept_file = output.unique(output.language(unit.language, "_work", "stage3"), unit.id)
            output.write_parquet(result.kept_file, rows.sort_by([(DOC_KEY, "ascending")]))
        removed = [t.drop_columns([c for c in DEDUP_INPUTS if c in t.column_names]) for t in removed]
        if any(t.num_rows for t in removed):
            result.removed_file = output.unique(output.language(unit.language, "_work", "removed", "stage3"), unit.id)
            output.write_parquet(result.removed_file, _concat(removed))
        result.seconds = time.monotonic() - started
        return result


def cached_scores(output: Output, unit: BucketUnit, block: Scorer, rows: pa.Table) -> tuple[pa.Table, int]:
    """`rows` with `block`'s score columns: those stored for the same doc_key and `score_key` (the block without
    its threshold, its models' hashes) are reused, the others computed and added to the store. Returns the rows
    (same order) and how many documents were scored now."""
    path = output.language(unit.language, "_work", "scores", f"{block.name}-{block.score_key()}", f"{unit.id}.parquet")
    columns = [DOC_KEY, *block.score_columns]
    stored = output.read_parquet([path], columns=columns) if output.fs.exists(path) else None
    if stored is None or not stored.num_rows:
        scored = block.score(rows)
        output.write_parquet(path, scored.select(columns))
        return scored, rows.num_rows
    position = pc.index_in(rows[DOC_KEY], value_set=stored[DOC_KEY].combine_chunks())
    hit = position.is_valid()
    rows = rows.append_column("_row", pa.array(np.arange(rows.num_rows)))
    found = rows.filter(hit)
    for column in block.score_columns:
        found = set_column(found, column, stored[column].take(position.filter(hit)))
    missing = rows.filter(pc.invert(hit))
    if missing.num_rows:
        missing = block.score(missing)
        output.write_parquet(path, [stored, missing.select(columns)])
        found = pa.concat_tables([found, missing.select(found.column_names)], promote_options="default")
        found = found.sort_by("_row")
    return found.drop_columns(["_row"]), missing.num_rows


def filter_outcomes(deduplicated: pa.Table, removed_keys: list[pa.ChunkedArray]) -> dict[str, list[int]]:
    """{cluster size: [kept, removed]} over the documents dedup kept (`removed_keys`: doc_keys the rules removed)."""
    if CLUSTER_SIZE not in deduplicated.column_names or not deduplicated.num_rows:
        return {}
    removed = pa.chunked_array([c for k in removed_keys for c in k.chunks], pa.uint64())
    flags = pc.is_in(deduplicated[DOC_KEY], value_set=removed.combine_chunks()).to_numpy(zero_copy_only=False)
    outcomes = count_filter_outcomes(deduplicated[CLUSTER_SIZE].to_numpy(), flags)
    return {str(size): [int(kept), int(gone)] for size, (kept, gone) in sorted(outcomes.items())}


@dataclass
class FinalWork:
    """Write one bucket's kept documents as released shards `data/<bucket>-<piece>.parquet`, every crawl mixed:
    one piece, or as many equal pieces as keep each under `shard_bytes`.

    Each document gets `weight` = the repetitions the rehydration `table` gives its `minhash_cluster_size`
    (1 without dedup); rows are in a seeded random order (a function of the seed and the documents only).
    `materialize` writes `weight` copies of each row instead (weight 1), the copies interleaved with other
    documents rather than adjacent. `result.counts` holds the released rows per crawl."""

    output: str
    table: dict[int, int] = field(default_factory=lambda: {1: 1})
    seed: int = 0
    materialize: bool = False
    shard_bytes: int = SHARD_BYTES

    def run(self, unit: BucketUnit) -> BucketResult:
        started = time.monotonic()
        output = Output(self.output)
        rows = output.read_parquet(list(unit.inputs)) if unit.inputs else pa.table({})
        result = BucketResult(unit.id, documents_read=rows.num_rows)
        if rows.num_rows:
            sizes = rows[CLUSTER_SIZE].to_numpy() if CLUSTER_SIZE in rows.column_names else np.ones(rows.num_rows)
            weights = repetitions_for_cluster_sizes(self.table, sizes.astype(np.int64))
            rows = rows.append_column(WEIGHT, pa.array(weights, pa.int64()))
            rows = shuffled(rows, self.seed, self.materialize)
            release = rows.drop_columns([c for c in rows.column_names if c in RELEASE_DROP or c.startswith("stat_")])
            result.counts = dict(sorted(Counter(rows["dump"].to_pylist()).items()))
            result.files = self._write_shards(output, unit, release)
        result.seconds = time.monotonic() - started
        return result


    def _write_shards(self, output: Output, unit: BucketUnit, release: pa.Table) -> dict[str, int]:
        """{path: rows} of the bucket's shards: one, or `ceil(size / shard_bytes)` equal row slices."""

        def path(piece: int) -> str:
            return output.language(unit.language, "data", f"{unit.bucket:05d}-{piece:03d}.parquet")

        size = output.write_parquet(path(0), release, row_group_rows=2_000)
        faults.kill_point("during_final_write")
        pieces = min(release.num_rows, -(-size // self.shard_bytes))
        if pieces <= 1:
            return {path(0): release.num_rows}
        files = {}
        bounds = np.linspace(0, release.num_rows, pieces + 1).astype(int)
        for piece, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
            output.write_parquet(path(piece), release.slice(lo, hi - lo), row_group_rows=2_000)
            faults.kill_point("during_final_write")
            files[path(piece)] = int(hi - lo)
        return files


def shuffled(rows: pa.Table, seed: int, materialize: bool = False) -> pa.Table:
    """Rows in an order given by a keyed hash of (seed, doc_key, copy): deterministic, independent of input
    order. With `materialize`, row i appears `weight[i]` times (weight then 1), each copy at its own place."""
    keys = rows[DOC_KEY].to_numpy().astype(np.uint64)
    if materialize:
        repeats = rows[WEIGHT].to_numpy()
        index = np.repeat(np.arange(rows.num_rows), repeats)
        copy = np.arange(len(index)) - np.repeat(np.cumsum(repeats) - repeats, repeats)
        rows = rows.take(pa.array(index)).drop_columns([WEIGHT])
        rows = rows.append_column(WEIGHT, pa.array(np.ones(len(index), np.int64)))
        keys = keys[index]
    else:
        copy = np.zeros(len(keys), np.int64)
    order = np.argsort(_mix(keys, seed, copy.astype(np.uint64)), kind="stable")
    return rows.take(pa.array(order))


def _mix(keys: np.ndarray, seed: int, copy: np.ndarray) -> np.ndarray:
    """A 64-bit hash per (key, seed, copy): murmur3's finaliser over their combination."""
    from curate.blocks.minhash import fmix64

    with np.errstate(over="ignore"):
        mixed = keys ^ fmix64(np.full(len(keys), seed, np.uint64) + copy * np.uint64(0x9E3779B97F4A7C15))
    return fmix64(mixed)
