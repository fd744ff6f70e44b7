"""Exact dedup (identical normalised texts) and URL dedup: groups of documents sharing one 64-bit hash.

Both are one grouping step over a hash-partitioned spill: a task streams its partitions' (hash, doc_key)
records twice (`dedup/reduce.py`: the smallest key per hash, then per record), and each hash shared by ≥ 2
documents is a cluster (id and representative = its smallest doc_key). No union–find is needed: sharing a
hash is already transitive, so the groups are stars, written as (member, smallest key) edges to the last two
component steps (`CENTERS`, `SIZES`), which count each document once and write the assignments.

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
from curate.dedup.plan import Plan, hash_partition, node_partition, range_name
from curate.dedup.reduce import aggregate
from curate.dedup.shuffle import PAIR, ShuffleWriter, iter_partitions
from curate.dedup.storage import committed

GROUPS = "groups"  # hashes shared by ≥ 2 documents → (member, smallest key) edges by member
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


def group_step(task: GroupTask) -> dict:
    """Run one grouping task (skipped when its manifest exists); returns its manifest."""
    name = range_name(task.lo, task.hi)
    work = {GROUPS: _groups, CANDIDATES: _candidates, SURVIVORS: _survivors}[task.kind]
    return committed(task.plan.store, task.plan.manifest(task.step, name), lambda: work(task, name))


def _chunks(task: GroupTask, lo: int, hi: int):
    return iter_partitions(task.plan.store, task.runs, lo, hi, PAIR, task.plan.chunk_bytes)


def _groups(task: GroupTask, name: str) -> dict:
    plan = task.plan
    writer = ShuffleWriter(plan.store, task.output, name, plan.partitions, PAIR, plan.chunk_bytes)
    groups = aggregate(_chunks(task, task.lo, task.hi)).shared
    for chunk in _chunks(task, task.lo, task.hi) if len(groups.keys) else ():
        found, rows = groups.lookup(chunk["a"])
        first = groups.mins[rows]
        linked = found & (first != chunk["b"])
        records = np.empty(int(linked.sum()), PAIR)
        records["a"] = chunk["b"][linked]
        records["b"] = first[linked]
        writer.add(node_partition(records["a"], plan.partitions), records)
    return {"runs": writer.close(), "records": writer.count}


def _candidates(task: GroupTask, name: str) -> dict:
    plan = task.plan
    writer = ShuffleWriter(plan.store, task.output, name, plan.num_buckets, PAIR, plan.chunk_bytes)
    groups = aggregate(_chunks(task, task.lo, task.hi)).shared
    for chunk in _chunks(task, task.lo, task.hi) if len(groups.keys) else ():
        out = chunk[groups.lookup(chunk["a"])[0]]  # members of a group of ≥ 2 (regrouped after the filter)
        writer.add(buckets_of(out["b"], plan.num_buckets).astype(np.int64), out)
    return {"runs": writer.close(), "records": writer.count}


def _survivors(task: GroupTask, name: str) -> dict:
    from curate.dedup.clusters import bucket_file

    plan = task.plan
    writer = ShuffleWriter(plan.store, task.output, name, plan.partitions, PAIR, plan.chunk_bytes)
    for bucket in range(task.lo, task.hi):
        removed = []
        for directory in task.removed_by:
            table = plan.store.read_parquet(bucket_file(directory, bucket), columns=["doc_key", "is_representative"])
            removed.append(table.filter(pc.invert(table["is_representative"]))["doc_key"].to_numpy())
        gone = np.concatenate(removed) if removed else np.zeros(0, np.uint64)
        for records in _chunks(task, bucket, bucket + 1):
            if len(gone):
                records = records[~np.isin(records["b"], gone)]
            writer.add(hash_partition(records["a"], plan.partitions), records)
    return {"runs": writer.close(), "records": writer.count}
