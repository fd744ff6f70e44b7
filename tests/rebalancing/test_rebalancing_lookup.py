"""Repetitions per document from a step table: the entry of the largest key ≤ the cluster size."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from curate.rebalancing import (
    FINEWEB2_FIXED_TABLE,
    NO_REHYDRATION_TABLE,
    repetitions_for_cluster_sizes,
)

INT64_MAX = np.iinfo(np.int64).max


def _repetitions(table, cluster_size: int) -> int:
    return int(repetitions_for_cluster_sizes(table, np.array([cluster_size]))[0])


@pytest.mark.parametrize(
    ("cluster_size", "repetitions"),
    [
        (1, 1),
        (2, 2),  # exact key
        (3, 3),
        (4, 3),  # between keys: the key below
        (5, 5),
        (99, 5),
        (100, 8),
        (999, 8),
        (1000, 1),
        (10**12, 1),  # huge: the last entry
        (INT64_MAX, 1),
    ],
)
def test_fixed_table_lookup(cluster_size: int, repetitions: int) -> None:
    assert _repetitions(FINEWEB2_FIXED_TABLE, cluster_size) == repetitions


def test_vectorised_lookup_matches_scalar() -> None:
    sizes = np.array([1, 4, 1000, 2, 99, 100, 5_000_000, 3])
    result = repetitions_for_cluster_sizes(FINEWEB2_FIXED_TABLE, sizes)
    assert result.dtype == np.int64
    assert result.tolist() == [1, 3, 1, 2, 5, 8, 1, 3]
    assert result.tolist() == [_repetitions(FINEWEB2_FIXED_TABLE, s) for s in sizes]


def test_lookup_accepts_arrow_polars_and_json_keys() -> None:
    table = {"1": 1, "3": 2, "10": 4}
    expected = [1, 1, 2, 2, 4, 4]
    sizes = [1, 2, 3, 9, 10, 11]
    assert repetitions_for_cluster_sizes(table, pa.array(sizes)).tolist() == expected
    chunked = pa.chunked_array([sizes[:2], sizes[2:]])
    assert repetitions_for_cluster_sizes(table, chunked).tolist() == expected
    series = pl.Series(sizes, dtype=pl.UInt32)
    assert repetitions_for_cluster_sizes(table, series).tolist() == expected
    assert repetitions_for_cluster_sizes(table, sizes).tolist() == expected


def test_lookup_of_no_documents() -> None:
    no_sizes = np.array([], dtype=np.int64)
    assert repetitions_for_cluster_sizes(FINEWEB2_FIXED_TABLE, no_sizes).tolist() == []


def test_none_table_gives_one_everywhere() -> None:
    sizes = [1, 2, 77, INT64_MAX]
    assert repetitions_for_cluster_sizes(NO_REHYDRATION_TABLE, sizes).tolist() == [1, 1, 1, 1]


@pytest.mark.parametrize("cluster_size", [0, -1])
def test_size_below_the_first_key_is_an_error(cluster_size: int) -> None:
    with pytest.raises(ValueError, match="not ≥ 1"):
        repetitions_for_cluster_sizes(FINEWEB2_FIXED_TABLE, [3, cluster_size])


def test_table_not_starting_at_one_is_an_error() -> None:
    with pytest.raises(ValueError, match="must start at cluster size 1"):
        _repetitions({2: 3, 10: 1}, 5)


def test_null_or_overflowing_sizes_are_errors() -> None:
    with pytest.raises(ValueError, match="nulls"):
        repetitions_for_cluster_sizes(FINEWEB2_FIXED_TABLE, pa.array([1, None]))
    with pytest.raises(ValueError, match="int64"):
        too_large = np.array([2**64 - 1], dtype=np.uint64)
        repetitions_for_cluster_sizes(FINEWEB2_FIXED_TABLE, too_large)
