"""Step 3: connected components of the candidate graph, distributed and bounded in memory.

Method: the alternating *large-star* / *small-star* operations of Kiveris et al., "Connected Components in
MapReduce and Beyond" (SoCC 2014). Each operation groups the edge list by one endpoint, so it runs as
independent tasks over node partitions of a spill (a task holds only its partitions' edges, never all of
them, and never a signature):

- large-star, per node u with neighbours Γ(u) and m = min(Γ(u) ∪ {u}): replace each edge (u, v) with v > u
  by (v, m);
- small-star, per node u with smaller neighbours S = {v ∈ Γ(u): v < u} and m = min(S): replace the edges
  (u, v), v ∈ S, by (v, m) and (u, m).

Both keep the components and shrink their diameter; a round (large, then small) that leaves the edge set
unchanged has reached the fixed point where every component is a star around its smallest key, in
O(log² n) rounds (2–4 on near-duplicate graphs, whose LSH edges already point at each run's minimum).
Convergence is checked on the (count, order-independent checksum) of the edge set the small-star step
reads. The edge set after each step is a function of the edge set before it, whatever the partitioning,
so the result does not depend on the number of tasks or workers.

Then the stars become cluster assignments: cluster id = the component's smallest doc_key (its centre),
size = members (the kept one included), representative = the centre.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from curate.blocks.keys import buckets_of
from curate.blocks.minhash import fmix64
from curate.dedup.lsh import write_undirected
from curate.dedup.plan import Plan, node_partition, range_name
from curate.dedup.shuffle import ASSIGNMENT, PAIR, ShuffleWriter, read_partitions
from curate.dedup.storage import committed

LARGE = "large"
SMALL = "small"
CENTERS = "centers"
SIZES = "sizes"


@dataclass(frozen=True)
class StepTask:
    plan: Plan
    kind: str  # LARGE, SMALL, CENTERS or SIZES
    step: str  # the step's directory name (for the manifest)
    runs: tuple[str, ...]
    lo: int
    hi: int
    output: str  # the spill directory this step writes


def unique_pairs(records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (a, b) pairs, sorted by a then b."""
    order = np.lexsort((records["b"], records["a"]))
    a = records["a"][order]
    b = records["b"][order]
    keep = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])] if len(a) else np.zeros(0, bool)
    return a[keep], b[keep]


def _groups(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start of each run of equal values in sorted `a`, run index of each element)."""
    starts = np.flatnonzero(np.r_[True, a[1:] != a[:-1]]) if len(a) else np.zeros(0, np.int64)
    run_of = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(a)]))
    return starts, run_of


def edge_digests(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A 64-bit digest of each (a, b) pair."""
    return fmix64(a ^ fmix64(b))


def run_step(task: StepTask) -> dict:
    """Run one component-step task (skipped when its manifest exists); returns its manifest."""
    name = range_name(task.lo, task.hi)
    work = {LARGE: _large_star, SMALL: _small_star, CENTERS: _centers, SIZES: _sizes}[task.kind]
    return committed(task.plan.store, task.plan.manifest(task.step, name), lambda: work(task, name))


def _by_first(records: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(a, b) sorted by a (duplicates kept: the operations are functions of the edge *set*), the start of
    each run of equal a, and each record's run."""
    order = np.argsort(records["a"])
    a, b = records["a"][order], records["b"][order]
    starts, run_of = _groups(a)
    return a, b, starts, run_of


def _large_star(task: StepTask, name: str) -> dict:
    """Input: both directions of every edge, by node. Output: (larger, smaller) by the larger node."""
    plan = task.plan
    writer = ShuffleWriter(plan.store, task.output, name, plan.partitions, PAIR, plan.budget_bytes)
    u, v, starts, run_of = _by_first(read_partitions(plan.store, list(task.runs), task.lo, task.hi, PAIR))
    smallest = np.minimum(u[starts], np.minimum.reduceat(v, starts))[run_of] if len(u) else u
    larger = v > u
    records = np.empty(int(larger.sum()), PAIR)
    records["a"] = v[larger]
    records["b"] = smallest[larger]
    writer.add(node_partition(records["a"], plan.partitions), records)
    return {"runs": writer.close(), "records": writer.count}


def _small_star(task: StepTask, name: str) -> dict:
    """Input: (larger, smaller) by the larger node. Output: both directions of the new edges, by node.

    Also returns the size and checksum of the distinct input edges (the convergence test): the checksum sums
    a 64-bit digest of each distinct edge, distinct by digest (a digest collision, p ≈ 2^-64, could only
    merge two edges in the count)."""
    plan = task.plan
    writer = ShuffleWriter(plan.store, task.output, name, plan.partitions, PAIR, plan.budget_bytes)
    x, y, starts, run_of = _by_first(read_partitions(plan.store, list(task.runs), task.lo, task.hi, PAIR))
    digests = np.sort(edge_digests(x, y))
    distinct = digests[np.r_[True, digests[1:] != digests[:-1]]] if len(digests) else digests
    edges, total = len(distinct), int(np.add.reduce(distinct, dtype=np.uint64)) if len(distinct) else 0
    smallest = np.minimum.reduceat(y, starts) if len(x) else y
    m = smallest[run_of]
    others = y != m
    u = np.concatenate([y[others], x[starts]])
    v = np.concatenate([m[others], smallest])
    write_undirected(writer, u, v, plan.partitions)
    return {"runs": writer.close(), "edges": edges, "checksum": total}


def _centers(task: StepTask, name: str) -> dict:
    """Input: the converged stars as (leaf, centre) by leaf. Output: (centre, leaf) by centre."""
    plan = task.plan
    writer = ShuffleWriter(plan.store, task.output, name, plan.partitions, PAIR, plan.budget_bytes)
    leaf, center = unique_pairs(read_partitions(plan.store, list(task.runs), task.lo, task.hi, PAIR))
    records = np.empty(len(leaf), PAIR)
    records["a"] = center
    records["b"] = leaf
    writer.add(node_partition(center, plan.partitions), records)
    return {"runs": writer.close(), "records": writer.count}


def _sizes(task: StepTask, name: str) -> dict:
    """Input: (centre, leaf) by centre. Output: assignment records by output bucket of the document."""
    plan = task.plan
    writer = ShuffleWriter(plan.store, task.output, name, plan.num_buckets, ASSIGNMENT, plan.budget_bytes)
    center, leaf = unique_pairs(read_partitions(plan.store, list(task.runs), task.lo, task.hi, PAIR))
    starts, _ = _groups(center)
    sizes = np.diff(np.r_[starts, len(center)]) + 1
    write_assignments(writer, leaf, np.repeat(center[starts], sizes - 1), np.repeat(sizes, sizes - 1))
    write_assignments(writer, center[starts], center[starts], sizes)
    return {"runs": writer.close(), "histogram": size_histogram(sizes)}


def write_assignments(writer: ShuffleWriter, keys: np.ndarray, clusters: np.ndarray, sizes: np.ndarray) -> None:
    records = np.empty(len(keys), ASSIGNMENT)
    records["doc_key"] = keys
    records["cluster_id"] = clusters
    records["size"] = sizes
    writer.add(buckets_of(keys, writer.num_partitions).astype(np.int64), records)


def size_histogram(sizes: np.ndarray) -> dict[str, int]:
    """{cluster size: number of clusters of that size} (JSON keys are strings)."""
    values, counts = np.unique(np.asarray(sizes, np.int64), return_counts=True)
    return {str(int(s)): int(c) for s, c in zip(values, counts)}


def merge_histograms(histograms: list[dict[str, int]]) -> dict[str, int]:
    total: Counter = Counter()
    for histogram in histograms:
        total.update({k: int(v) for k, v in histogram.items()})
    return {k: total[k] for k in sorted(total, key=int)}
