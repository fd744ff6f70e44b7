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
    """The bucket (0..num_buckets-1) of each key: `num_buckets` equal, contiguous ranges of the key space (the
    key's high 32 bits scaled), so a bucket is a key range (`bucket_bounds`) and sorted files can be read by
    range. doc_key is a uniform hash, so equal ranges hold about equal numbers of documents."""
    if not 1 <= num_buckets <= 1 << 32:
        raise ValueError(f"num_buckets must be in 1..2**32, got {num_buckets}")
    array = keys if isinstance(keys, np.ndarray) else np.asarray(keys.to_numpy(zero_copy_only=False))
    high = array.astype(np.uint64, copy=False) >> np.uint64(32)
    return (high * np.uint64(num_buckets)) >> np.uint64(32)


def bucket_bounds(bucket: int, num_buckets: int) -> tuple[int, int]:
    """The keys [lo, hi) of `bucket` (Python ints; `hi` is 2**64 for the last bucket)."""

    def start(b: int) -> int:  # the smallest key whose bucket is >= b: high bits >= ceil(b * 2**32 / n)
        return -(-(b << 32) // num_buckets) << 32

    return start(bucket), start(bucket + 1)


def repeated_keys(keys: np.ndarray) -> np.ndarray:
    """Mask of every occurrence of a key after its first (the same record read twice)."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    repeated = np.zeros(len(keys), bool)
    repeated[order[1:][ordered[1:] == ordered[:-1]]] = True
    return repeated
