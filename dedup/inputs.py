"""Step 1 (one task per group of stage-1 inputs: files, or a language's row groups of one): read the dedup columns
and spill them by hash partition.

A task streams its files a bounded number of rows at a time (`Plan.rows_per_read`), reading only `doc_key` (or `id`),
`minhash_bands`, `text_hash` and `url` (what the enabled methods need), and writes

- `lsh/`: one (band hash, doc_key) record per band of every document with a signature, in partition
  `band × partitions + band_hash mod partitions`: each band's records stay apart, and a band's records are
  spread over `partitions` partitions by hash;
- `exact/`: (text_hash, doc_key) for every document with a non-empty normalised text;
- `url/`: (hash of the URL string, doc_key) for every document with a URL.

Signatures are never gathered anywhere: each task holds one read batch plus a bounded spill buffer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.blocks.base import DROP_REASON
from curate.blocks.keys import DOC_KEY, document_keys
from curate.blocks.minhash import MINHASH_BANDS, TEXT_HASH, hash_strings
from curate.dedup.plan import Plan, hash_partition
from curate.dedup.shuffle import PAIR, ShuffleWriter
from curate.dedup.storage import Input, committed, input_path, open_input

URL = "url"
MAP_STEP = "map"


@dataclass(frozen=True)
class MapTask:
    plan: Plan
    files: tuple[Input, ...]

    @property
    def name(self) -> str:
        names = [f if isinstance(f, str) else "{}#{}-{}".format(*f) for f in self.files]
        return hashlib.blake2b("\n".join(names).encode(), digest_size=8).hexdigest()


def _pairs(hashes: np.ndarray, keys: np.ndarray) -> np.ndarray:
    records = np.empty(len(keys), PAIR)
    records["a"] = hashes
    records["b"] = keys
    return records


def _keys(batch: pa.RecordBatch) -> np.ndarray:
    if DOC_KEY in batch.schema.names:
        return batch.column(DOC_KEY).to_numpy(zero_copy_only=False).astype(np.uint64, copy=False)
    return document_keys(batch.column("id")).to_numpy()


def _columns(plan: Plan, schema: pa.Schema, path: str) -> list[str]:
    names = set(schema.names)
    columns = [DOC_KEY] if DOC_KEY in names else ["id"]
    needed = []
    if plan.minhash:
        needed.append(MINHASH_BANDS)
    if plan.exact:
        needed.append(TEXT_HASH)
    if plan.by_url or plan.exclude:
        needed.append(URL)
    missing = [c for c in [*needed, columns[0]] if c not in names]
    if missing:
        raise KeyError(
            f"{path}: dedup needs column(s) {missing} (written by the stage-1 blocks `minhash` / `exact_hash`); "
            f"the file has {sorted(names)}"
        )
    return columns + needed


def _without_excluded(batch: pa.RecordBatch, exclude: tuple) -> tuple[pa.RecordBatch, int]:
    """The rows of `batch` that no block of `exclude` drops, and how many were dropped."""
    table = pa.Table.from_batches([batch])
    marked = table
    for block in exclude:
        marked = block(marked)
    if DROP_REASON not in marked.column_names:
        return batch, 0
    kept = table.filter(pc.is_null(marked[DROP_REASON])).combine_chunks()
    rows = kept.to_batches()[0] if kept.num_rows else batch.slice(0, 0)
    return rows, batch.num_rows - kept.num_rows


def read_inputs(task: MapTask) -> dict:
    """Run one map task (skipped when its manifest exists); returns its manifest."""
    return committed(task.plan.store, task.plan.manifest(MAP_STEP, task.name), lambda: _read_inputs(task))


def _read_inputs(task: MapTask) -> dict:
    plan = task.plan
    budget = max(plan.budget_bytes // 2, 1 << 16)
    writers = {}
    if plan.minhash:
        writers["lsh"] = ShuffleWriter(
            plan.store, plan.step("lsh"), task.name, plan.bands * plan.partitions, PAIR, budget
        )
    if plan.exact:
        writers["exact"] = ShuffleWriter(plan.store, plan.step("exact"), task.name, plan.partitions, PAIR, budget)
    if plan.by_url:
        writers["url"] = ShuffleWriter(plan.store, plan.step("url"), task.name, plan.partitions, PAIR, budget)
    counts = {"documents": 0, "signatures": 0, "text_hashes": 0, "urls": 0, "excluded": 0}
    band_base = np.arange(plan.bands, dtype=np.int64) * plan.partitions
    for item in task.files:
        path, groups = input_path(item)
        with open_input(path) as handle:
            parquet = pq.ParquetFile(handle)
            columns = _columns(plan, parquet.schema_arrow, path)
            for batch in parquet.iter_batches(batch_size=plan.rows_per_read, row_groups=groups, columns=columns,
                                              use_threads=False):
                if plan.exclude:
                    batch, excluded = _without_excluded(batch, plan.exclude)
                    counts["excluded"] += excluded
                keys = _keys(batch)
                counts["documents"] += len(keys)
                if plan.minhash:
                    column = batch.column(MINHASH_BANDS)
                    valid = column.is_valid().to_numpy(zero_copy_only=False)
                    if column.type.list_size != plan.bands:
                        raise ValueError(
                            f"{path}: minhash_bands has {column.type.list_size} bands, the config {plan.bands}"
                        )
                    bands = pc.list_flatten(column.filter(pa.array(valid))).to_numpy(zero_copy_only=False)
                    bands = bands.astype(np.uint64, copy=False).reshape(-1, plan.bands)
                    owners = keys[valid]
                    counts["signatures"] += len(owners)
                    partitions = hash_partition(bands, plan.partitions) + band_base  # (docs, bands)
                    writers["lsh"].add(
                        partitions.reshape(-1), _pairs(bands.reshape(-1), np.repeat(owners, plan.bands))
                    )
                if plan.exact:
                    column = batch.column(TEXT_HASH)
                    valid = column.is_valid().to_numpy(zero_copy_only=False)
                    hashes = column.filter(pa.array(valid)).to_numpy(zero_copy_only=False).astype(np.uint64)
                    counts["text_hashes"] += len(hashes)
                    writers["exact"].add(hash_partition(hashes, plan.partitions), _pairs(hashes, keys[valid]))
                if plan.by_url:
                    column = batch.column(URL)
                    valid = pc.fill_null(pc.greater(pc.binary_length(column), 0), False).to_numpy(
                        zero_copy_only=False
                    )
                    hashes = hash_strings(column.filter(pa.array(valid)))
                    counts["urls"] += len(hashes)
                    writers["url"].add(hash_partition(hashes, plan.partitions), _pairs(hashes, keys[valid]))
    return {"runs": {name: writer.close() for name, writer in writers.items()}, "counts": counts}
