"""Counting filter outcomes per cluster size, merging buckets, choosing the tail threshold."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from curate.rebalancing import (
    FilterOutcomeCounts,
    RemovalRateDistribution,
    choose_tail_threshold,
    count_filter_outcomes,
    merge_filter_outcome_counts,
    rehydration_table_from_distribution,
    removal_rate_distribution_from_counts,
)


def test_counts_per_size() -> None:
    counts = count_filter_outcomes([1, 1, 1, 2, 2, 7], [True, False, False, True, True, False])
    assert counts == {1: (2, 1), 2: (0, 2), 7: (1, 0)}
    assert counts[1] == FilterOutcomeCounts(kept=2, removed=1)
    assert counts[1].total == 3


def test_counts_accept_polars_and_arrow() -> None:
    expected = {3: (1, 1), 5: (0, 1)}
    assert count_filter_outcomes(pl.Series([3, 3, 5]), pl.Series([True, False, True])) == expected
    assert count_filter_outcomes(
        pa.chunked_array([[3], [3, 5]]), pa.array([True, False, True])
    ) == expected


def test_counts_of_no_documents() -> None:
    assert count_filter_outcomes(np.array([], dtype=np.int64), np.array([], dtype=bool)) == {}
    assert count_filter_outcomes([], []) == {}


@pytest.mark.parametrize(
    ("sizes", "removed", "message"),
    [
        ([1, 2], [True], "one 'removed' flag per document"),
        ([1, 2], [1, 0], "booleans"),
        ([0, 2], [True, False], "not ≥ 1"),
        ([1.5, 2], [True, False], "integers"),
        (pa.array([1, None]), [True, False], "nulls"),
        (["a", "b"], [True, False], "integers"),
    ],
)
def test_counts_reject_bad_input(sizes: object, removed: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        count_filter_outcomes(sizes, removed)  # type: ignore[arg-type]


def test_bucket_counts_merge_to_the_counts_of_all_documents() -> None:
    rng = np.random.default_rng(0)
    sizes = rng.zipf(1.8, size=20_000).clip(max=10_000)
    removed = rng.random(20_000) < 0.3
    whole = count_filter_outcomes(sizes, removed)
    bucket_of_document = rng.integers(0, 5, size=20_000)
    per_bucket = [
        count_filter_outcomes(sizes[bucket_of_document == b], removed[bucket_of_document == b])
        for b in range(5)
    ]
    assert merge_filter_outcome_counts(per_bucket) == whole
    assert merge_filter_outcome_counts(reversed(per_bucket)) == whole
    # merging is associative: merge two partial merges
    assert merge_filter_outcome_counts(
        [merge_filter_outcome_counts(per_bucket[:2]), merge_filter_outcome_counts(per_bucket[2:])]
    ) == whole
    assert removal_rate_distribution_from_counts(
        merge_filter_outcome_counts(per_bucket)
    ) == removal_rate_distribution_from_counts(whole)


def test_merge_accepts_counts_that_went_through_json() -> None:
    bucket = count_filter_outcomes([1, 2, 2], [False, True, False])
    through_json = json.loads(json.dumps({str(k): list(v) for k, v in bucket.items()}))
    assert merge_filter_outcome_counts([through_json, bucket]) == {1: (2, 0), 2: (2, 2)}
    assert list(merge_filter_outcome_counts([{5: (1, 0)}, {2: (0, 1)}])) == [2, 5]


def test_merge_rejects_negative_counts() -> None:
    with pytest.raises(ValueError, match="negative"):
        merge_filter_outcome_counts([{1: (-1, 0)}])


@pytest.mark.parametrize(
    ("documents_by_size", "min_docs", "threshold"),
    [
        ({1: 500, 2: 200, 3: 50, 4: 120, 5: 10, 6: 3}, 100, 5),  # a rare size below T stays listed
        ({1: 500, 2: 200, 3: 99, 4: 10}, 100, 3),
        ({1: 500, 2: 200, 3: 100, 4: 10}, 100, 4),  # exactly min_docs has its own entry
        ({1: 50, 2: 10}, 100, 1),  # nothing frequent: everything pooled at 1
        ({1: 500, 2: 200}, 100, 2),  # everything frequent: the largest size is the tail
        ({1: 5, 2: 3, 9: 1}, 1, 9),
        ({1: 500, 2: 0, 3: 150, 4: 0, 5: 2}, 100, 4),  # zero-document sizes are absent
    ],
)
def test_tail_threshold(documents_by_size: dict, min_docs: int, threshold: int) -> None:
    assert choose_tail_threshold(documents_by_size, min_docs) == threshold


def test_tail_threshold_default_is_100_documents() -> None:
    assert choose_tail_threshold({1: 1000, 2: 100, 3: 99, 4: 1}) == 3


def test_tail_threshold_needs_documents() -> None:
    with pytest.raises(ValueError, match="no documents"):
        choose_tail_threshold({})
    with pytest.raises(ValueError, match="min_docs_per_size"):
        choose_tail_threshold({1: 5}, 0)


def test_distribution_from_counts_pools_the_tail() -> None:
    counts = {1: (600, 400), 2: (100, 100), 3: (10, 40), 4: (60, 60), 5: (1, 9), 9: (0, 3)}
    distribution = removal_rate_distribution_from_counts(counts, min_docs_per_size=100)
    assert distribution.cluster_sizes == (1, 2, 3, 4)
    assert distribution.removal_rates_percent == (40.0, 50.0, 80.0, 50.0)
    assert distribution.documents_kept_by_filters == (600, 100, 10, 60)
    assert distribution.tail_threshold == 5
    assert distribution.tail_removal_rate_percent == 12 / 13 * 100
    assert distribution.tail_documents_kept_by_filters == 1
    assert distribution.global_removal_rate_percent == (1383 - 771) / 1383 * 100
    assert distribution.entry_cluster_sizes == (1, 2, 3, 4, 5)


def test_distribution_leaves_out_sizes_without_documents() -> None:
    counts = {1: (80, 20), 2: (0, 0), 3: (50, 50), 4: (1, 1)}
    distribution = removal_rate_distribution_from_counts(counts, min_docs_per_size=100)
    assert distribution.cluster_sizes == (1, 3)
    assert distribution.tail_threshold == 4


def test_distribution_with_an_explicit_tail_threshold() -> None:
    counts = {1: (80, 20), 2: (60, 40), 3: (5, 5)}
    distribution = removal_rate_distribution_from_counts(counts, tail_threshold=2)
    assert distribution.cluster_sizes == (1,)
    assert distribution.tail_removal_rate_percent == 45 / 110 * 100
    with pytest.raises(ValueError, match="tail entry would be empty"):
        removal_rate_distribution_from_counts(counts, tail_threshold=4)


def test_everything_pooled_gives_one_repetition() -> None:
    distribution = removal_rate_distribution_from_counts({1: (30, 20), 2: (4, 6)})
    assert distribution.cluster_sizes == ()
    assert distribution.tail_threshold == 1
    assert rehydration_table_from_distribution(distribution, 10) == {1: 1}


def test_distribution_fields_are_validated() -> None:
    fields = dict(
        cluster_sizes=(1, 2),
        removal_rates_percent=(10.0, 20.0),
        documents_kept_by_filters=(9, 8),
        tail_threshold=3,
        tail_removal_rate_percent=30.0,
        tail_documents_kept_by_filters=7,
        global_removal_rate_percent=15.0,
    )
    RemovalRateDistribution(**fields)
    with pytest.raises(ValueError, match="one rate and one count"):
        RemovalRateDistribution(**{**fields, "removal_rates_percent": (10.0,)})
    with pytest.raises(ValueError, match="strictly ascending"):
        RemovalRateDistribution(**{**fields, "cluster_sizes": (2, 1)})
    with pytest.raises(ValueError, match="must exceed"):
        RemovalRateDistribution(**{**fields, "tail_threshold": 2})
    with pytest.raises(ValueError, match="percentage"):
        RemovalRateDistribution(**{**fields, "global_removal_rate_percent": 150.0})
    with pytest.raises(ValueError, match="missing"):
        RemovalRateDistribution.from_fineweb2_dict({"cluster_sizes": [1]})
