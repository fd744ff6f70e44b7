"""Partitioned spill files: how records move between the tasks of the dedup stage.

A task adds fixed-size numpy records with a partition number; when its buffer passes `budget_bytes` it
writes one *run*: the records sorted by partition (`<name>.bin`, raw little-endian) and the offset of each
partition in it (`<name>.idx`, `num_partitions + 1` int64). A reader takes a contiguous range of partitions
from every run with one ranged read per file, so a task of the next step holds only its own partitions in
memory, whatever the size of the whole data set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from curate.dedup.storage import Store

PAIR = np.dtype([("a", "<u8"), ("b", "<u8")])
ASSIGNMENT = np.dtype([("doc_key", "<u8"), ("cluster_id", "<u8"), ("size", "<u8")])


@dataclass
class ShuffleWriter:
    """Buffers (partition, record) pairs and spills them as sorted runs under `directory`."""

    store: Store
    directory: str
    name: str
    num_partitions: int
    dtype: np.dtype
    budget_bytes: int
    distinct: bool = False  # drop records equal to another in the same run (repeated edges)
    _parts: list[np.ndarray] = field(default_factory=list)
    _records: list[np.ndarray] = field(default_factory=list)
    _buffered: int = 0
    runs: list[str] = field(default_factory=list)
    count: int = 0

    def add(self, partitions: np.ndarray, records: np.ndarray) -> None:
        if len(records) == 0:
            return
        self._parts.append(np.asarray(partitions, np.int64))
        self._records.append(records)
        self._buffered += records.nbytes
        self.count += len(records)
        if self._buffered >= self.budget_bytes:
            self.flush()

    def flush(self) -> None:
        if not self._records:
            return
        parts = np.concatenate(self._parts)
        records = np.concatenate(self._records)
        self._parts, self._records, self._buffered = [], [], 0
        if self.distinct:
            order = np.lexsort((records["b"], records["a"], parts))
            records, parts = records[order], parts[order]
            keep = np.r_[True, (records[1:] != records[:-1]) | (parts[1:] != parts[:-1])]
            records, parts = records[keep], parts[keep]
            self.count -= int(len(keep) - keep.sum())
        elif self.num_partitions > 1:
            # a stable sort of small integers is a radix sort in numpy: linear time
            narrow = np.uint16 if self.num_partitions <= 1 << 16 else np.uint32
            records = records[np.argsort(parts.astype(narrow), kind="stable")]
        offsets = np.zeros(self.num_partitions + 1, np.int64)
        np.cumsum(np.bincount(parts, minlength=self.num_partitions), out=offsets[1:])
        del parts
        path = f"{self.directory}/{self.name}-{len(self.runs):04d}"
        self.store.write_bytes(f"{path}.bin", memoryview(np.ascontiguousarray(records).view(np.uint8)))
        self.store.write_bytes(f"{path}.idx", offsets.astype("<i8").tobytes())
        self.runs.append(path)

    def close(self) -> list[str]:
        """Write what is buffered; the run paths (without suffix) to list in the task's manifest."""
        self.flush()
        return list(self.runs)


def read_partitions(store: Store, runs: list[str], lo: int, hi: int, dtype: np.dtype) -> np.ndarray:
    """The records of partitions [lo, hi) from every run, concatenated (run order, then partition order)."""
    pieces = []
    for run in runs:
        index = np.frombuffer(store.read_bytes(f"{run}.idx", lo * 8, (hi + 1) * 8), "<i8")
        start, stop = int(index[0]) * dtype.itemsize, int(index[-1]) * dtype.itemsize
        if stop > start:
            pieces.append(np.frombuffer(store.read_bytes(f"{run}.bin", start, stop), dtype))
    if not pieces:
        return np.zeros(0, dtype)
    return np.concatenate(pieces) if len(pieces) > 1 else pieces[0].copy()


def iter_partitions(
    store: Store, runs: list[str] | tuple[str, ...], lo: int, hi: int, dtype: np.dtype, chunk_bytes: int
) -> Iterator[np.ndarray]:
    """The records of partitions [lo, hi) of every run, as chunks of at most `chunk_bytes` (run order, then
    partition order): what a task streams when a partition may hold more than its budget."""
    step = max(1, chunk_bytes // dtype.itemsize)
    for run in runs:
        index = np.frombuffer(store.read_bytes(f"{run}.idx", lo * 8, (hi + 1) * 8), "<i8")
        for start in range(int(index[0]), int(index[-1]), step):
            stop = min(start + step, int(index[-1]))
            yield np.frombuffer(store.read_bytes(f"{run}.bin", start * dtype.itemsize, stop * dtype.itemsize), dtype)


def ranges(num_partitions: int, total_bytes: int, budget_bytes: int, min_tasks: int) -> list[tuple[int, int]]:
    """Split partitions 0..num_partitions into contiguous ranges: at least `min_tasks`, and enough that each
    holds about `budget_bytes` or less (partitions are filled evenly by hashing)."""
    tasks = max(min_tasks, -(-total_bytes // max(budget_bytes, 1)), 1)
    tasks = min(tasks, num_partitions)
    cuts = np.linspace(0, num_partitions, tasks + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
