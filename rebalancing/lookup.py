"""Repetitions for documents from a step table: the entry of the largest key ≤ the cluster size."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

from curate.rebalancing._cluster_sizes import as_cluster_size_array
from curate.rebalancing.step_table import validate_step_table


def repetitions_for_cluster_sizes(
    table: Mapping[int, int] | Mapping[str, int], cluster_sizes: ArrayLike
) -> np.ndarray:
    """Repetitions (int64) for each cluster size: the value of the largest table key ≤ the size.

    Vectorised over a numpy array, list, polars Series or pyarrow array (without nulls). Sizes
    beyond the last key take the last entry. A size < 1 is not a cluster size and raises
    ``ValueError`` (a validated table starts at 1, so no valid size is below its first key).
    """
    step_table = validate_step_table(table)
    sizes = as_cluster_size_array(cluster_sizes)
    first_sizes = np.fromiter(step_table.keys(), dtype=np.int64, count=len(step_table))
    repetitions = np.fromiter(step_table.values(), dtype=np.int64, count=len(step_table))
    run_index = np.searchsorted(first_sizes, sizes, side="right") - 1
    return repetitions[run_index]
