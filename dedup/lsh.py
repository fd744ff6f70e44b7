"""Step 2 (bands partitioned across tasks): candidate pairs from equal band hashes.

A task takes a contiguous range of the LSH spill's partitions (band-major, so a task holds one or a few
bands, or a slice of one band's hash range) and, band by band, sorts the (band hash, doc_key) records by
hash then key. Each run of equal hashes is one LSH bucket: its members are linked to the run's smallest key
(k − 1 edges for k members, not k(k − 1)/2 pairs), which keeps the same connected components. Edges are
written to the component step's spill in both directions, partitioned by node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.dedup.plan import Plan, node_partition, range_name
from curate.dedup.shuffle import PAIR, ShuffleWriter, read_partitions
from curate.dedup.storage import committed

LSH_STEP = "lsh-edges"


@dataclass(frozen=True)
class BandTask:
    plan: Plan
    runs: tuple[str, ...]
    lo: int
    hi: int
    output: str  # the spill directory of the first component step


def repeated(values: np.ndarray) -> np.ndarray:
    """Mask of the elements whose value occurs more than once (a sort of the values, no argsort)."""
    if len(values) < 2:
        return np.zeros(len(values), bool)
    ordered = np.sort(values)
    repeats = ordered[1:][ordered[1:] == ordered[:-1]]
    if not len(repeats):
        return np.zeros(len(values), bool)
    repeats = repeats[np.r_[True, repeats[1:] != repeats[:-1]]]
    position = np.minimum(np.searchsorted(repeats, values), len(repeats) - 1)
    return repeats[position] == values


def run_edges(hashes: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges (run minimum, member) for every run of equal `hashes`; self-pairs (a key seen twice) dropped.

    Only the records whose hash repeats are sorted (a band's hashes are nearly all distinct)."""
    shared = repeated(hashes)
    hashes, keys = hashes[shared], keys[shared]
    order = np.lexsort((keys, hashes))
    hashes = hashes[order]
    keys = keys[order]
    starts = np.flatnonzero(np.r_[True, hashes[1:] != hashes[:-1]]) if len(keys) else np.zeros(0, np.int64)
    run_of = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(keys)]))
    first = keys[starts][run_of]
    linked = first != keys
    return first[linked], keys[linked]


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
    writer = ShuffleWriter(plan.store, task.output, name, plan.partitions, PAIR, plan.budget_bytes)
    candidates = 0
    for band in range(task.lo // plan.partitions, (task.hi - 1) // plan.partitions + 1):
        lo = max(task.lo, band * plan.partitions)
        hi = min(task.hi, (band + 1) * plan.partitions)
        records = read_partitions(plan.store, list(task.runs), lo, hi, PAIR)
        if len(records) < 2:
            continue
        u, v = run_edges(records["a"], records["b"])
        del records
        candidates += len(u)
        write_undirected(writer, u, v, plan.partitions)
    return {"runs": writer.close(), "edges": candidates}
