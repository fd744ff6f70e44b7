"""Per-key aggregates over a task's partitions, chunk by chunk: how every step stays within its budget
whatever the shape of the groups.

A task reads its partitions as chunks (`shuffle.iter_partitions`: each run's slice, a bounded number of bytes
at a time). `aggregate` reduces each chunk to one row per distinct key (the smallest and largest value, the
record count) and merges those rows, so the table has one row per distinct key however many records share
it: a boilerplate cluster of millions of members is one row. Keys are spread over partitions by hash, so the
distinct keys of a task are bounded by its share of the documents. A second pass over the chunks then
emits, per record, what its key's row says (large-star, small-star, LSH buckets, cluster sizes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

MIN_MERGE_ROWS = 1 << 16  # pending chunk rows merged into the table at once (amortises the merge sort)


@dataclass(frozen=True)
class KeyTable:
    """One row per distinct key, sorted by key: min and max of the values, number of records."""

    keys: np.ndarray
    mins: np.ndarray
    maxs: np.ndarray
    counts: np.ndarray

    def positions(self, keys: np.ndarray) -> np.ndarray:
        """Row of each key (every key must be in the table)."""
        return np.searchsorted(self.keys, keys)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, row of each key, clipped where not found)."""
        if not len(self.keys):
            return np.zeros(len(keys), bool), np.zeros(len(keys), np.intp)
        rows = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return self.keys[rows] == keys, rows

    def select(self, mask: np.ndarray) -> KeyTable:
        return KeyTable(self.keys[mask], self.mins[mask], self.maxs[mask], self.counts[mask])

    @property
    def shared(self) -> KeyTable:
        """The keys with at least two distinct values (a group; the same value twice is not one)."""
        return self.select(self.mins != self.maxs)


def _reduce(keys: np.ndarray, mins: np.ndarray, maxs: np.ndarray, counts: np.ndarray) -> KeyTable:
    if not len(keys):
        return KeyTable(keys, mins, maxs, counts)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return KeyTable(
        keys[starts],
        np.minimum.reduceat(mins[order], starts),
        np.maximum.reduceat(maxs[order], starts),
        np.add.reduceat(counts[order], starts),
    )


def _merge(tables: list[KeyTable]) -> KeyTable:
    if len(tables) == 1:
        return tables[0]
    return _reduce(*(np.concatenate([getattr(t, name) for t in tables]) for name in ("keys", "mins", "maxs", "counts")))


def aggregate(chunks: Iterable[np.ndarray]) -> KeyTable:
    """The KeyTable of (a, b) records grouped by `a` (values `b`), from a stream of PAIR chunks."""
    empty = np.zeros(0, np.uint64)
    table = KeyTable(empty, empty, empty, np.zeros(0, np.int64))
    pending: list[KeyTable] = []
    rows = 0
    for chunk in chunks:
        part = _reduce(chunk["a"], chunk["b"], chunk["b"], np.ones(len(chunk), np.int64))
        pending.append(part)
        rows += len(part.keys)
        if rows > max(len(table.keys), MIN_MERGE_ROWS):
            table, pending, rows = _merge([table, *pending]), [], 0
    return _merge([table, *pending])
