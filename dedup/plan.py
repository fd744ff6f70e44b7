"""The layout of one dedup run: where each step writes, how finely records are partitioned."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.blocks.minhash import fmix64
from curate.dedup.storage import Store

MAX_ROWS_PER_READ = 65_536  # stage-1 rows read at a time by a map task (fewer under a small budget)


@dataclass(frozen=True)
class Plan:
    """Settings every task of a run shares (small, picklable).

    partitions: how many hash partitions each spill is cut into (per band for the LSH spill); fixed for the
        life of a run directory so a resumed run finds the same files.
    budget_bytes: records a task holds in memory before it spills (and the target size of a task's input).
    """

    store: Store
    partitions: int
    num_buckets: int
    bands: int
    budget_bytes: int
    minhash: bool
    exact: bool
    by_url: bool
    exclude: tuple = ()  # blocks reading `url` whose dropped documents take no part (`cluster`'s `exclude`)

    @property
    def rows_per_read(self) -> int:
        """Rows per read batch: a batch and what is derived from it (~64 bytes per band) stay within budget/4."""
        return int(min(MAX_ROWS_PER_READ, max(256, self.budget_bytes // (4 * 64 * self.bands))))

    @property
    def chunk_bytes(self) -> int:
        """Bytes of spill records a task reads at a time, and buffers before it writes a run: a quarter of the
        budget, so a chunk, its sort and the task's key table stay within budget plus a constant."""
        return max(self.budget_bytes // 4, 1 << 14)

    def step(self, *parts: str) -> str:
        return self.store.path(*parts)

    def manifest(self, step: str, task: str) -> str:
        return self.store.path(step, "_manifests", f"{task}.json")


def node_partition(keys: np.ndarray, partitions: int) -> np.ndarray:
    """Partition of each document key in the component spills (keys are mixed first)."""
    return (fmix64(keys) % np.uint64(partitions)).astype(np.int64)


def hash_partition(hashes: np.ndarray, partitions: int) -> np.ndarray:
    """Partition of each (already uniformly distributed) band / text / URL hash."""
    return (hashes % np.uint64(partitions)).astype(np.int64)


def range_name(lo: int, hi: int) -> str:
    return f"{lo:07d}-{hi:07d}"
