"""Stages after dedup, each a unit of work per bucket of one language, in memory bounded by a batch.

A bucket is a range of `doc_key` (`blocks.keys.bucket_bounds`); the driver chooses how many from the bytes stage 1
wrote (`run.choose_buckets`). Stage 3 streams the bucket's rows from its inputs (the language's stage-1 parts when
it has one bucket, else the bucket's row groups of the regroup files, `regroup.py`: either way only its own rows,
each file's footer read once) in batches of about `Stage3Work.batch_bytes`: it keeps one row of
each record read more than once (the same WARC listed twice, overlapping inputs: `dedup.same_record`; the first
one read stays), applies the dedup assignments of that bucket (cluster ids and sizes; non-representatives
removed), then the language's stage-3 blocks (filters on stored statistics, formatters, scorers: a scorer's
scores are kept under `_work/scores/` by doc_key and `Scorer.score_key`, so a rerun with other thresholds scores
no document again), appends kept and removed rows to their files, and counts per cluster size the documents the
filters kept and removed (the rehydration statistics). The final stage writes the released shards
`data/<bucket>-<piece>.parquet`: each document with its `weight` (repetitions from the rehydration table), in a
seeded shuffle, produced a slice of the shuffle order at a time (`FinalWork.memory_bytes`). A bucket is a hash
sample of the language's documents over every selected crawl, so every shard, and any prefix of it, holds the
crawls in proportion (`dump` says which).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.blocks import faults
from curate.blocks.decontamination import COLUMNS as DECONTAMINATION_COLUMNS
from curate.blocks.base import DROP_REASON, Block, Scorer, mark_dropped, set_column, split_dropped
from curate.blocks.keys import DOC_KEY, bucket_bounds, repeated_keys
from curate.blocks.minhash import MINHASH_BANDS, TEXT_HASH
from curate.dedup import ClusterResult, apply_dedup
from curate.pipeline.execution.parts import Part
from curate.pipeline.execution.stage1 import MAX_ERRORS, BlockErrors, _concat, _rows_per_group, _run_block
from curate.pipeline.execution.storage import Output
from curate.pipeline.execution.streams import (BatchWriter, bucket_batches, conform, part_groups, parts_schema,
                                               read_footers, row_groups)
from curate.rebalancing import count_filter_outcomes, repetitions_for_cluster_sizes

CLUSTER_SIZE = "minhash_cluster_size"
SAME_RECORD = "dedup.same_record"
SHARD_BYTES = 500_000_000  # a released shard's target size (FineWeb2 publishes ~500 MB Parquet files)
STAGE3_BATCH_BYTES = 64 << 20  # rows a stage-3 task holds at once (Arrow bytes; blocks may add a few times that)
FINAL_MEMORY_BYTES = 256 << 20  # rows a final task sorts at once (Arrow bytes): one slice of the shuffle order
SHARD_ROW_GROUP_ROWS = 2_000
WEIGHT = "weight"
_ORDER = "_order"  # a released row's place in the shuffle (final stage, spool files only)
# Columns only stage 3 needs: not written past it.
DEDUP_INPUTS = (MINHASH_BANDS, TEXT_HASH)
# Internal columns kept under _work/ (with every `stat_*` filter statistic) but not released.
RELEASE_DROP = ("bucket", "doc_key", "lid_label", "drop_reason", "exact_cluster_id", "exact_cluster_size",
                "url_cluster_id", "url_cluster_size", *DECONTAMINATION_COLUMNS)


@dataclass(frozen=True)
class BucketUnit:
    """One bucket of one language (of `num_buckets`), and what it reads (`Part`s, or whole files by path)."""

    id: str
    language: str
    bucket: int
    inputs: tuple[Part | str, ...]
    num_buckets: int = 1


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
    kept_bytes: int = 0


@dataclass
class Stage3Work:
    """Apply dedup and a language's stage-3 blocks to one bucket, `batch_bytes` of its rows at a time.

    `dedup`: the language's dedup result (None: dedup off). `rehydration_rules`: names of the blocks whose
    removals count as "removed by the filters" in the rehydration statistics."""

    output: str
    blocks: list[Block]
    dedup: ClusterResult | None = None
    rehydration_rules: tuple[str, ...] = ()
    batch_bytes: int = STAGE3_BATCH_BYTES
    max_errors: int = MAX_ERRORS

    def run(self, unit: BucketUnit) -> BucketResult:
        started = time.monotonic()
        output = Output(self.output)
        result = BucketResult(unit.id)
        result.thresholds = {rule.reason: threshold for block in self.blocks if hasattr(block, "checks")
                             for rule, threshold in block.checks()}
        assignments = self.dedup.load(unit.bucket) if self.dedup is not None else None
        stores = {b.name: ScoreStore.open(output, unit, b) for b in self.blocks if isinstance(b, Scorer)}
        counts: Counter = Counter()
        outcomes: dict[int, list[int]] = {}
        seen = np.empty(0, np.uint64)  # doc_keys read so far (8 bytes a document): a record's copies share one
        writers: dict[str, BatchWriter] = {}
        errors = BlockErrors(self.output, self.max_errors)
        try:
            batches = bucket_batches(output, unit.inputs, unit.bucket, unit.num_buckets, self.batch_bytes)
            while (rows := next(batches, None)) is not None:
                result.documents_read += rows.num_rows
                keys = rows[DOC_KEY].to_numpy()
                repeated = repeated_keys(keys) | np.isin(keys, seen)
                seen = np.union1d(seen, keys)
                batch = [mark_dropped(rows, repeated, SAME_RECORD)]
                del rows  # `_batch` holds the only reference: each step's input is freed once split
                kept, removed = self._batch(batch, assignments, stores, counts, outcomes, result, errors)
                for name, table in (("kept", kept), ("removed", removed)):
                    if table.num_rows:
                        if name not in writers:
                            folder = ("_work", "stage3") if name == "kept" else ("_work", "removed", "stage3")
                            path = output.unique(output.language(unit.language, *folder), unit.id)
                            writers[name] = BatchWriter(output, path, _rows_per_group(table))
                        writers[name].write(table)
            for store in stores.values():
                store.save()
            if "kept" in writers:
                result.kept_file, result.kept_bytes = writers["kept"].path, writers.pop("kept").close()
            if "removed" in writers:
                result.removed_file = writers["removed"].path
                writers.pop("removed").close()
        finally:
            for writer in writers.values():
                writer.abort()
        counts["kept"] = counts.get("kept", 0)
        result.counts = dict(counts)
        result.filter_outcomes = {str(size): list(outcomes[size]) for size in sorted(outcomes)}
        result.seconds = time.monotonic() - started
        return result

    def _batch(self, batch: list[pa.Table], assignments: dict | None, stores: dict[str, ScoreStore], counts: Counter,
               outcomes: dict[int, list[int]], result: BucketResult,
               errors: BlockErrors | None = None) -> tuple[pa.Table, pa.Table]:
        """One batch (taken out of `batch`) through dedup and the blocks: (kept rows, removed rows); counts and
        outcomes accumulate."""
        rows = batch.pop()
        removed = []
        for block in self.blocks:  # as if never crawled: dedup did not see these documents either
            if block.before_dedup and rows.num_rows:
                rows, dropped = _run_block(block, rows, counts, errors)
                removed.append(dropped)
        if assignments is not None:
            rows = apply_dedup(rows, assignments)
        rows, dropped = split_dropped(rows)
        counts.update(dropped[DROP_REASON].to_pylist())
        removed.append(dropped)
        rows = rows.drop_columns([c for c in DEDUP_INPUTS if c in rows.column_names])
        deduplicated = rows.select([c for c in (DOC_KEY, CLUSTER_SIZE) if c in rows.column_names])
        by_rules = []
        for block in (b for b in self.blocks if not b.before_dedup):
            if not rows.num_rows:
                break
            if isinstance(block, Scorer):
                rows, scored = stores[block.name].lookup(block, rows)
                reused_before, scored_before = result.scores.get(block.name, [0, 0])
                result.scores[block.name] = [reused_before + rows.num_rows - scored, scored_before + scored]
                rows, dropped = split_dropped(block.decide(rows))
                counts.update(dropped[DROP_REASON].to_pylist())
            else:
                rows, dropped = _run_block(block, rows, counts, errors)
            if dropped.num_rows:
                removed.append(dropped)
                if block.name in self.rehydration_rules:
                    by_rules.append(dropped[DOC_KEY])
        counts["kept"] += rows.num_rows
        for size, (kept, gone) in filter_outcomes(deduplicated, by_rules).items():
            outcomes[int(size)] = [a + b for a, b in zip(outcomes.get(int(size), [0, 0]), (kept, gone))]
        removed = [t.drop_columns([c for c in DEDUP_INPUTS if c in t.column_names]) for t in removed if t.num_rows]
        return rows, _concat(removed)


_RANGE_FILE = re.compile(r"([0-9a-f]{16})-([0-9a-f]{16})\.parquet$")


@dataclass
class ScoreStore:
    """A scorer's stored scores for one bucket's key range: `_work/scores/<scorer>-<score key>/<lo>-<last>.parquet`
    (hex keys). A bucket reads every stored file whose range overlaps its own, so scores survive a change of the
    bucket count; it writes its own range's file (stored and new scores) once, at the end."""

    output: Output
    path: str
    columns: tuple[str, ...]
    stored: pa.Table
    new: list[pa.Table] = field(default_factory=list)

    @classmethod
    def open(cls, output: Output, unit: BucketUnit, block: Scorer) -> ScoreStore:
        lo, hi = bucket_bounds(unit.bucket, unit.num_buckets)
        directory = output.language(unit.language, "_work", "scores", f"{block.name}-{block.score_key()}")
        columns = (DOC_KEY, *block.score_columns)
        tables = []
        for path in sorted(output.fs.ls(directory, detail=False)) if output.fs.exists(directory) else []:
            match = _RANGE_FILE.search(path)
            if match and int(match[1], 16) < hi and int(match[2], 16) >= lo:
                table = output.read_parquet([path], columns=list(columns))
                keys = table[DOC_KEY].to_numpy()
                tables.append(table.filter(pa.array((keys >= np.uint64(lo)) & (keys <= np.uint64(hi - 1)))))
        stored = _concat(tables) if tables else pa.table({})
        if stored.num_rows and len(tables) > 1:  # ranges of several bucketings overlap: one row a key
            _, first = np.unique(stored[DOC_KEY].to_numpy(), return_index=True)
            stored = stored.take(pa.array(np.sort(first)))
        return cls(output, f"{directory}/{lo:016x}-{hi - 1:016x}.parquet", columns, stored)

    def lookup(self, block: Scorer, rows: pa.Table) -> tuple[pa.Table, int]:
        """`rows` (same order) with the score columns: stored ones reused, the others computed (and kept for
        `save`). Returns the rows and how many were scored now."""
        if not self.stored.num_rows:
            scored = block.score(rows)
            self.new.append(scored.select(list(self.columns)))
            return scored, rows.num_rows
        position = pc.index_in(rows[DOC_KEY], value_set=self.stored[DOC_KEY].combine_chunks())
        hit = position.is_valid()
        rows = rows.append_column("_row", pa.array(np.arange(rows.num_rows)))
        found = rows.filter(hit)
        for column in self.columns[1:]:
            found = set_column(found, column, self.stored[column].take(position.filter(hit)))
        missing = rows.filter(pc.invert(hit))
        if missing.num_rows:
            missing = block.score(missing)
            self.new.append(missing.select(list(self.columns)))
            found = pa.concat_tables([found, missing.select(found.column_names)], promote_options="default")
            found = found.sort_by("_row")
        return found.drop_columns(["_row"]), missing.num_rows

    def save(self) -> None:
        """Write the range's file (stored and new scores) when anything was scored."""
        if self.new:
            self.output.write_parquet(self.path, [self.stored, *self.new] if self.stored.num_rows else self.new)
            self.new = []


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
    one piece, or as many equal pieces as keep each under `shard_bytes` (estimated from the inputs' Parquet).

    Each document gets `weight` = the repetitions the rehydration `table` gives its `minhash_cluster_size`
    (1 without dedup); rows are in a seeded random order (a function of the seed and the documents only:
    `shuffled`'s order). `materialize` writes `weight` copies of each row instead (weight 1), the copies
    interleaved with other documents rather than adjacent. `result.counts` holds the released rows per crawl.

    Memory: a first pass reads only doc_key and cluster size and keeps the sorted order keys (8 bytes a released
    row) to cut the order into slices of about `memory_bytes` of rows; a second pass spools each input row group's
    rows to their slice's local file; then each slice is read, sorted and appended to the shards (about twice
    `memory_bytes` at once). The shards' bytes do not depend on `memory_bytes`."""

    output: str
    table: dict[int, int] = field(default_factory=lambda: {1: 1})
    seed: int = 0
    materialize: bool = False
    shard_bytes: int = SHARD_BYTES
    memory_bytes: int = FINAL_MEMORY_BYTES

    def run(self, unit: BucketUnit) -> BucketResult:
        started = time.monotonic()
        output = Output(self.output)
        result = BucketResult(unit.id)
        inputs = _Inputs(output, unit.inputs)
        order, result.documents_read = self._order_keys(inputs)
        if len(order):
            row_bytes, release_bytes = _input_sizes(inputs)
            copies = len(order) / max(result.documents_read, 1)
            pieces = int(max(1, min(len(order), -(-release_bytes * copies // self.shard_bytes))))
            step = max(1, int(self.memory_bytes // max(row_bytes, 1)))
            starts, released = order[::step], len(order)
            del order
            writer = _ShardWriter(output, unit, np.linspace(0, released, pieces + 1).astype(np.int64))
            counts: Counter = Counter()
            try:
                with tempfile.TemporaryDirectory(prefix="curate-final-") as spool:
                    for rows in self._slices(inputs, starts, spool):
                        for value in pc.value_counts(rows["dump"]).to_pylist():
                            counts[value["values"]] += value["counts"]
                        writer.write(rows.drop_columns([c for c in rows.column_names
                                                        if c in RELEASE_DROP or c.startswith("stat_")]))
                        del rows
                result.files = writer.close()
            except BaseException:
                writer.abort()
                raise
            result.counts = dict(sorted(counts.items()))
        result.seconds = time.monotonic() - started
        return result

    def _expand(self, batch: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row index of each released row, its weight, its order key) for a batch of input rows."""
        keys = batch[DOC_KEY].to_numpy().astype(np.uint64)
        sizes = batch[CLUSTER_SIZE].to_numpy() if CLUSTER_SIZE in batch.column_names else np.ones(len(keys))
        weights = repetitions_for_cluster_sizes(self.table, np.asarray(sizes).astype(np.int64))
        if not self.materialize:
            return np.arange(len(keys)), weights, _mix(keys, self.seed, np.zeros(len(keys), np.uint64))
        index = np.repeat(np.arange(len(keys)), weights)
        copy = np.arange(len(index)) - np.repeat(np.cumsum(weights) - weights, weights)
        return index, np.ones(len(index), np.int64), _mix(keys[index], self.seed, copy.astype(np.uint64))

    def _order_keys(self, inputs: _Inputs) -> tuple[np.ndarray, int]:
        """The sorted order keys of every released row, and the number of input rows."""
        parts, documents = [], 0
        for batch in inputs.read([DOC_KEY, CLUSTER_SIZE]):
            documents += batch.num_rows
            parts.append(self._expand(batch)[2])
        order = np.concatenate(parts) if parts else np.empty(0, np.uint64)
        order.sort()
        return order, documents

    def _slices(self, inputs: _Inputs, starts: np.ndarray, spool: str):
        """The released rows (with `weight`) in order, as one table per slice of the order (slice j: order keys
        from starts[j] to starts[j + 1]): one pass spools each input batch's rows to their slice's local file,
        then each slice is read, sorted and handed on (memory: about two slices)."""
        schema = parts_schema(inputs.parts, inputs.footers)
        schema = schema.append(pa.field(WEIGHT, pa.int64())).append(pa.field(_ORDER, pa.uint64()))
        writers = [pq.ParquetWriter(f"{spool}/{j:06d}.parquet", schema, compression="lz4",
                                    use_dictionary=False)  # dictionary builders: ~10 MB a writer (measured)
                   for j in range(len(starts))]
        try:
            for batch in inputs.read():
                index, weights, order = self._expand(batch)
                slice_of = np.searchsorted(starts, order, side="right") - 1
                batch = conform(batch, schema.remove(schema.get_field_index(_ORDER))
                                .remove(schema.get_field_index(WEIGHT)))
                for j in np.unique(slice_of):
                    inside = np.flatnonzero(slice_of == j)
                    rows = batch.take(pa.array(index[inside]))
                    rows = rows.append_column(WEIGHT, pa.array(weights[inside], pa.int64()))
                    writers[j].write_table(rows.append_column(_ORDER, pa.array(order[inside], pa.uint64())))
        finally:
            for writer in writers:
                writer.close()
        for j in range(len(starts)):
            path = f"{spool}/{j:06d}.parquet"
            rows = pa.concat_tables(list(row_groups(pq.ParquetFile(path))))  # read_table holds ~2× (measured)
            os.remove(path)
            order = np.argsort(rows[_ORDER].to_numpy(), kind="stable")
            yield rows.drop_columns([_ORDER]).take(pa.array(order))


@dataclass
class _Inputs:
    """A bucket's inputs and their footers, each read once however many passes read the rows."""

    output: Output
    items: tuple[Part | str, ...]
    parts: list[Part] = field(init=False)
    footers: dict = field(init=False)

    def __post_init__(self) -> None:
        self.parts = [Part.of(p) for p in self.items]
        self.footers = read_footers(self.output, self.parts)

    def read(self, columns: list[str] | None = None):
        """The row groups of each part in turn (only `columns` that exist, when given)."""
        for part in self.parts:
            yield from part_groups(self.output, part, self.footers[part.path], columns=columns)


def _input_sizes(inputs: _Inputs) -> tuple[float, int]:
    """(Arrow bytes a row takes in memory, about: uncompressed Parquet bytes per row; Parquet bytes of the
    released columns): from the inputs' footers."""
    rows = uncompressed = release = 0
    for part in inputs.parts:
        metadata = inputs.footers[part.path]
        for group in part.groups(metadata):
            row_group = metadata.row_group(group)
            rows += row_group.num_rows
            for index in range(row_group.num_columns):
                column = row_group.column(index)
                name = column.path_in_schema.split(".")[0]
                if part.columns is not None and name not in part.columns:
                    continue
                uncompressed += column.total_uncompressed_size
                if name not in RELEASE_DROP and not name.startswith("stat_"):
                    release += column.total_compressed_size
    return uncompressed / max(rows, 1), release


class _ShardWriter:
    """Rows in release order to `data/<bucket>-<piece>.parquet`: piece p takes rows [bounds[p], bounds[p+1])."""

    def __init__(self, output: Output, unit: BucketUnit, bounds: np.ndarray):
        self.output, self.unit, self.bounds = output, unit, bounds
        self.files: dict[str, int] = {}
        self.piece, self.written = 0, 0
        self.writer: BatchWriter | None = None

    def path(self, piece: int) -> str:
        return self.output.language(self.unit.language, "data", f"{self.unit.bucket:05d}-{piece:03d}.parquet")

    def write(self, rows: pa.Table) -> None:
        while rows.num_rows:
            room = int(self.bounds[self.piece + 1]) - self.written
            if self.writer is None:
                self.writer = BatchWriter(self.output, self.path(self.piece), SHARD_ROW_GROUP_ROWS)
            self.writer.write(rows.slice(0, room))
            taken = min(room, rows.num_rows)
            self.written += taken
            rows = rows.slice(taken)
            if self.written == int(self.bounds[self.piece + 1]):
                self._finish()

    def _finish(self) -> None:
        self.writer.close()
        self.files[self.path(self.piece)] = self.writer.rows
        faults.kill_point("during_final_write")
        self.writer, self.piece = None, self.piece + 1

    def close(self) -> dict[str, int]:
        if self.writer is not None:
            self._finish()
        return self.files

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


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
