"""Document keys: the 64-bit join key derived from `id`, and the bucket a key falls in."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

DOC_KEY = "doc_key"


def document_keys(ids: pa.Array | pa.ChunkedArray | list[str]) -> pa.Array:
    """A stable uint64 per document id (first 8 bytes of blake2b), the only join key across stages."""
    values = ids.to_pylist() if isinstance(ids, (pa.Array, pa.ChunkedArray)) else ids
    keys = np.fromiter(
        (int.from_bytes(hashlib.blake2b(i.encode("utf-8"), digest_size=8).digest(), "little") for i in values),
        dtype=np.uint64,
        count=len(values),
    )
    return pa.array(keys, type=pa.uint64())


def buckets_of(keys: pa.Array | pa.ChunkedArray | np.ndarray, num_buckets: int) -> np.ndarray:
    """The bucket (0..num_buckets-1) of each key; stage outputs are partitioned by it."""
    array = keys if isinstance(keys, np.ndarray) else np.asarray(keys.to_numpy(zero_copy_only=False))
    return (array >> np.uint64(7)) % np.uint64(num_buckets)


def repeated_keys(keys: np.ndarray) -> np.ndarray:
    """Mask of every occurrence of a key after its first (the same record read twice)."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    repeated = np.zeros(len(keys), bool)
    repeated[order[1:][ordered[1:] == ordered[:-1]]] = True
    return repeated
