"""Validation shared by the counting and lookup functions."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def as_cluster_size_array(cluster_sizes: ArrayLike) -> np.ndarray:
    """Cluster sizes as a 1-D int64 array, or ``ValueError`` for nulls, fractions or sizes < 1."""
    sizes = np.asarray(cluster_sizes)
    if sizes.ndim != 1:
        sizes = sizes.reshape(-1)
    if sizes.dtype.kind == "f":
        if np.isnan(sizes).any():
            raise ValueError("cluster sizes contain nulls")
        if (sizes != np.floor(sizes)).any():
            raise ValueError("cluster sizes must be integers")
    elif sizes.dtype.kind == "u" and sizes.size and sizes.max() > np.iinfo(np.int64).max:
        raise ValueError(f"cluster size {int(sizes.max())} is beyond the int64 range")
    elif sizes.dtype.kind not in "iu" and sizes.size:
        raise ValueError(f"cluster sizes must be integers, got dtype {sizes.dtype}")
    sizes = sizes.astype(np.int64, copy=False)
    if sizes.size and sizes.min() < 1:
        raise ValueError(f"cluster size {int(sizes.min())} is not ≥ 1")
    return sizes
