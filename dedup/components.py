"""Step 3: connected components of the candidate graph, distributed and bounded in memory.

Method: the alternating *large-star* / *small-star* operations of Kiveris et al., "Connected Components in
MapReduce and Beyond" (SoCC 2014). Each operation groups the edge list by one endpoint, so it runs as
independent tasks over node partitions of a spill (a task holds only its partitions' edges, never all of
them, and never a signature):

- large-star, per node u with neighbours Γ(u) and m = min(Γ(u) ∪ {u}): replace each edge (u, v) with v > u
  by (v, m);
- small-star, per node u with smaller neighbours S = {v ∈ Γ(u): v < u} and m = min(S): replace the edges
  (u, v), v ∈ S, by (v, m) and (u, m).

Both keep the components and shrink their diameter. Convergence: a large-star task also checks, per node of
its input, that the node is a centre (no smaller neighbour) or a leaf (one distinct neighbour, smaller); when
every node is, the graph is a forest of stars around their smallest keys, and that large-star's output
(leaf, centre) is the result, in O(log² n) rounds (1–3 on near-duplicate graphs, whose LSH edges already
point at each run's minimum). The check uses each node's smallest and largest neighbour only, so repeated
edges change nothing. The edge set after each step is a function of the edge set before it, whatever the
partitioning, so the result does not depend on the number of tasks or workers.

Memory: every step streams its partitions twice (`dedup/reduce.py`): one table row per distinct node, then
per edge what that row says. A node with millions of neighbours (the centre of a boilerplate cluster) is one
row, never its neighbourhood.

Then the stars become cluster assignments: cluster id = the component's smallest doc_key (its centre),
size = members (the kept one included), representative = the centre. Exact and URL dedup reuse the last
two steps (their groups are stars already).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from curate.blocks.keys import buckets_of
from curate.dedup.lsh import write_undirected
from curate.dedup.plan import Plan, node_partition, range_name
from curate.dedup.reduce import aggregate
from curate.dedup.shuffle import ASSIGNMENT, PAIR, ShuffleWriter, iter_partitions
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


def run_step(task: StepTask) -> dict:
    """Run one component-step task (skipped when its manifest exists); returns its manifest."""
    name = range_name(task.lo, task.hi)
    work = {LARGE: _large_star, SMALL: _small_star, CENTERS: _centers, SIZES: _sizes}[task.kind]
    return committed(task.plan.store, task.plan.manifest(task.step, name), lambda: work(task, name))


def _writer(task: StepTask, partitions: int, dtype: np.dtype = PAIR) -> ShuffleWriter:
    plan = task.plan
    return ShuffleWriter(
        plan.store, task.output, range_name(task.lo, task.hi), partitions, dtype, plan.chunk_bytes,
        distinct=dtype is PAIR,
    )


def _chunks(task: StepTask):
    plan = task.plan
    return iter_partitions(plan.store, task.runs, task.lo, task.hi, PAIR, plan.chunk_bytes)


def _large_star(task: StepTask, name: str) -> dict:
    """Input: both directions of every edge, by node. Output: (larger, smaller) by the larger node; and the
    number of nodes that are neither a centre nor a leaf of a star (0: converged, the output is the stars)."""
    partitions = task.plan.partitions
    writer = _writer(task, partitions)
    nodes = aggregate(_chunks(task))
    smallest = np.minimum(nodes.keys, nodes.mins)
    star = (nodes.mins > nodes.keys) | ((nodes.maxs < nodes.keys) & (nodes.mins == nodes.maxs))
    for chunk in _chunks(task):
        u, v = chunk["a"], chunk["b"]
        larger = v > u
        records = np.empty(int(larger.sum()), PAIR)
        records["a"] = v[larger]
        records["b"] = smallest[nodes.positions(u[larger])]
        writer.add(node_partition(records["a"], partitions), records)
    return {"runs": writer.close(), "records": writer.count, "violations": int((~star).sum())}


def _small_star(task: StepTask, name: str) -> dict:
    """Input: (larger, smaller) by the larger node. Output: both directions of the new edges, by node."""
    partitions = task.plan.partitions
    writer = _writer(task, partitions)
    nodes = aggregate(_chunks(task))
    for chunk in _chunks(task):
        smaller, m = chunk["b"], nodes.mins[nodes.positions(chunk["a"])]
        others = smaller != m
        write_undirected(writer, smaller[others], m[others], partitions)
    write_undirected(writer, nodes.keys, nodes.mins, partitions)
    return {"runs": writer.close(), "records": writer.count}


def _centers(task: StepTask, name: str) -> dict:
    """Input: (leaf, centre) by leaf, possibly repeated. Output: each (centre, leaf) once, by centre."""
    partitions = task.plan.partitions
    writer = _writer(task, partitions)
    leaves = aggregate(_chunks(task))
    records = np.empty(len(leaves.keys), PAIR)
    records["a"] = leaves.mins
    records["b"] = leaves.keys
    writer.add(node_partition(records["a"], partitions), records)
    return {"runs": writer.close(), "records": writer.count}


def _sizes(task: StepTask, name: str) -> dict:
    """Input: distinct (centre, leaf) by centre. Output: assignment records by output bucket of the document."""
    writer = _writer(task, task.plan.num_buckets, ASSIGNMENT)
    centres = aggregate(_chunks(task))
    sizes = centres.counts + 1
    for chunk in _chunks(task):
        write_assignments(writer, chunk["b"], chunk["a"], sizes[centres.positions(chunk["a"])])
    write_assignments(writer, centres.keys, centres.keys, sizes)
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
