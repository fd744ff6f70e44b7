"""Exact dedup (identical normalised texts) and URL dedup: groups of documents sharing one 64-bit hash.

Both are one grouping step over a hash-partitioned spill: a task sorts its partitions' (hash, doc_key)
records, and each run of ≥ 2 documents with the same hash is a cluster (id and representative = its
smallest doc_key, size = its documents). No union–find is needed: sharing a hash is already transitive.

URL dedup decides among the documents that MinHash and exact dedup keep (otherwise it could drop the
document a near-duplicate cluster kept and lose that content altogether): the URL groups of ≥ 2 are sent
to the output bucket of each document, the documents another method removes are taken out there (a join
with that bucket's assignment files), and the remaining ones are grouped again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc

from curate.blocks.keys import buckets_of
from curate.dedup.components import size_histogram, write_assignments
from curate.dedup.lsh import repeated
from curate.dedup.plan import Plan, hash_partition, range_name
from curate.dedup.shuffle import ASSIGNMENT, PAIR, ShuffleWriter, read_partitions
from curate.dedup.storage import committed

GROUPS = "groups"  # hash runs ≥ 2 → assignment records by bucket
CANDIDATES = "candidates"  # hash runs ≥ 2 → (hash, key) by bucket, for the URL survivor filter
SURVIVORS = "survivors"  # per bucket: candidates another method keeps → (hash, key) by hash


@dataclass(frozen=True)
class GroupTask:
    plan: Plan
    kind: str  # GROUPS, CANDIDATES or SURVIVORS
    step: str
    runs: tuple[str, ...]
    lo: int
    hi: int
    output: str
    removed_by: tuple[str, ...] = ()  # SURVIVORS: assignment directories whose non-representatives leave


def hash_groups(hashes: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keys, cluster ids, sizes) of the documents in groups of ≥ 2 equal hashes (a key counted once)."""
    shared = repeated(hashes)  # only repeated hashes can form a group
    hashes, keys = hashes[shared], keys[shared]
    order = np.lexsort((keys, hashes))
    hashes, keys = hashes[order], keys[order]
    distinct = np.r_[True, (hashes[1:] != hashes[:-1]) | (keys[1:] != keys[:-1])] if len(keys) else []
    hashes, keys = hashes[distinct], keys[distinct]
    starts = np.flatnonzero(np.r_[True, hashes[1:] != hashes[:-1]]) if len(keys) else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, len(keys)])
    per_row = np.repeat(sizes, sizes)
    clusters = np.repeat(keys[starts], sizes)
    grouped = per_row >= 2
    return keys[grouped], clusters[grouped], per_row[grouped]


def group_step(task: GroupTask) -> dict:
    """Run one grouping task (skipped when its manifest exists); returns its manifest."""
    name = range_name(task.lo, task.hi)
    work = {GROUPS: _groups, CANDIDATES: _candidates, SURVIVORS: _survivors}[task.kind]
    return committed(task.plan.store, task.plan.manifest(task.step, name), lambda: work(task, name))


def _groups(task: GroupTask, name: str) -> dict:
    plan = task.plan
    writer = ShuffleWriter(plan.store, task.output, name, plan.num_buckets, ASSIGNMENT, plan.budget_bytes)
    records = read_partitions(plan.store, list(task.runs), task.lo, task.hi, PAIR)
    keys, clusters, sizes = hash_groups(records["a"], records["b"])
    write_assignments(writer, keys, clusters, sizes)
    representatives = keys == clusters
    return {"runs": writer.close(), "histogram": size_histogram(sizes[representatives])}


def _candidates(task: GroupTask, name: str) -> dict:
    plan = task.plan
    writer = ShuffleWriter(plan.store, task.output, name, plan.num_buckets, PAIR, plan.budget_bytes)
    records = read_partitions(plan.store, list(task.runs), task.lo, task.hi, PAIR)
    out = records[repeated(records["a"])]  # members of a group of ≥ 2 (regrouped after the filter)
    writer.add(buckets_of(out["b"], plan.num_buckets).astype(np.int64), out)
    return {"runs": writer.close(), "records": writer.count}


def _survivors(task: GroupTask, name: str) -> dict:
    from curate.dedup.clusters import bucket_file

    plan = task.plan
    writer = ShuffleWriter(plan.store, task.output, name, plan.partitions, PAIR, plan.budget_bytes)
    for bucket in range(task.lo, task.hi):
        records = read_partitions(plan.store, list(task.runs), bucket, bucket + 1, PAIR)
        if not len(records):
            continue
        removed = []
        for directory in task.removed_by:
            table = plan.store.read_parquet(bucket_file(directory, bucket), columns=["doc_key", "is_representative"])
            removed.append(table.filter(pc.invert(table["is_representative"]))["doc_key"].to_numpy())
        if removed:
            records = records[~np.isin(records["b"], np.concatenate(removed))]
        writer.add(hash_partition(records["a"], plan.partitions), records)
    return {"runs": writer.close(), "records": writer.count}
