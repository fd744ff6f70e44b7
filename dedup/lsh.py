"""Step 2 (bands partitioned across tasks): candidate pairs from equal band hashes.

A task takes a contiguous range of the LSH spill's partitions (band-major, so a task holds one or a few
bands, or a slice of one band's hash range) and, band by band, streams the (band hash, doc_key) records
twice (`dedup/reduce.py`): first the smallest key of each hash, then, per record, an edge from that key to
the record's key. Each run of equal hashes is one LSH bucket whose members are linked to its smallest key
(k − 1 edges for k members, not k(k − 1)/2 pairs), which keeps the same connected components; a bucket of
millions of members costs one table row, never its members in memory. Edges are written to the component
step's spill in both directions, partitioned by node; a run drops the edges it holds twice (the same pair
from several bands).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.dedup.plan import Plan, node_partition, range_name
from curate.dedup.reduce import aggregate
from curate.dedup.shuffle import PAIR, ShuffleWriter, iter_partitions
from curate.dedup.storage import committed

LSH_STEP = "lsh-edges"


@dataclass(frozen=True)
class BandTask:
    plan: Plan
    runs: tuple[str, ...]
    lo: int
    hi: int
    output: str  # the spill directory of the first component step


def write_undirected(writer: ShuffleWriter, u: np.ndarray, v: np.ndarray, partitions: int) -> None:
    """Both directions of each edge, each in the partition of its first node."""
    records = np.empty(2 * len(u), PAIR)
    records["a"][: len(u)] = u
    records["b"][: len(u)] = v
    records["a"][len(u) :] = v
    records["b"][len(u) :] = u
    writer.add(node_partition(records["a"], partitions), records)


def band_edges(task: BandTask) -> dict:
    """Run one band task (skipped when its manifest exists); returns its manifest."""
    name = range_name(task.lo, task.hi)
    return committed(task.plan.store, task.plan.manifest(LSH_STEP, name), lambda: _band_edges(task, name))


def _band_edges(task: BandTask, name: str) -> dict:
    plan = task.plan
    writer = ShuffleWriter(plan.store, task.output, name, plan.partitions, PAIR, plan.chunk_bytes, distinct=True)
    candidates = 0
    for band in range(task.lo // plan.partitions, (task.hi - 1) // plan.partitions + 1):
        lo = max(task.lo, band * plan.partitions)
        hi = min(task.hi, (band + 1) * plan.partitions)
        buckets = aggregate(iter_partitions(plan.store, task.runs, lo, hi, PAIR, plan.chunk_bytes)).shared
        if not len(buckets.keys):
            continue
        for chunk in iter_partitions(plan.store, task.runs, lo, hi, PAIR, plan.chunk_bytes):
            found, rows = buckets.lookup(chunk["a"])
            first = buckets.mins[rows]
            linked = found & (first != chunk["b"])
            candidates += int(linked.sum())
            write_undirected(writer, first[linked], chunk["b"][linked], plan.partitions)
    return {"runs": writer.close(), "edges": candidates}
