"""The per-language rule, its smoothing and rounding, and the fixed tables."""

from __future__ import annotations

import numpy as np
import pytest

from curate.rebalancing import (
    FINEWEB2_FIXED_TABLE,
    NO_REHYDRATION_TABLE,
    RemovalRateDistribution,
    linear_repetitions,
    rehydration_table,
    rehydration_table_from_distribution,
    removal_rate_distribution_from_counts,
    repetitions_per_entry,
    round_half_up,
    smooth_with_moving_average,
    step_table_from_repetitions,
    validate_step_table,
)

# A planted language: R = 50 %, lowest rate 30 % (size 5), M = 5, so where r < R the rule is
# 1 + 4·(r − 50)/(30 − 50) = 1 + (50 − r)/5.
#   size:        1   2   3   4   5   6   7   tail(8)
#   r (%):      60  55  45  40  30  35  50   85
#   linear:      1   1   2   3   5   4   1    1      (r ≥ R → 1; size 7 has r = R exactly)
#   smoothed:    1   1  12/5 15/5 15/5 14/5 1  1     (ends unsmoothed; e.g. (1+1+2+3+5)/5 = 2.4)
#   rounded:     1   1   2   3   3   3   1    1
#   table:      {1: 1, 3: 2, 4: 3, 7: 1}
PLANTED_RATES = [60.0, 55.0, 45.0, 40.0, 30.0, 35.0, 50.0]
PLANTED_TAIL_RATE = 85.0
PLANTED_TABLE = {1: 1, 3: 2, 4: 3, 7: 1}


def planted_distribution() -> RemovalRateDistribution:
    return RemovalRateDistribution(
        cluster_sizes=(1, 2, 3, 4, 5, 6, 7),
        removal_rates_percent=tuple(PLANTED_RATES),
        documents_kept_by_filters=tuple(100 - int(rate) for rate in PLANTED_RATES),
        tail_threshold=8,
        tail_removal_rate_percent=PLANTED_TAIL_RATE,
        tail_documents_kept_by_filters=15,
        global_removal_rate_percent=50.0,
    )


def test_planted_linear_repetitions_by_hand() -> None:
    linear = linear_repetitions([*PLANTED_RATES, PLANTED_TAIL_RATE], 50.0, max_repetitions=5)
    np.testing.assert_allclose(linear, [1, 1, 2, 3, 5, 4, 1, 1])


def test_planted_smoothing_by_hand() -> None:
    smoothed = smooth_with_moving_average([1, 1, 2, 3, 5, 4, 1, 1])
    np.testing.assert_allclose(smoothed, [1, 1, 2.4, 3.0, 3.0, 2.8, 1, 1])


def test_planted_table_by_hand() -> None:
    distribution = planted_distribution()
    assert repetitions_per_entry(distribution, 5).tolist() == [1, 1, 2, 3, 3, 3, 1, 1]
    assert rehydration_table_from_distribution(distribution, 5) == PLANTED_TABLE


def test_planted_table_from_document_counts() -> None:
    """100 documents per size 1..7, 100 in the tail (sizes 8, 9, 50): R comes out at 50 %."""
    counts = {size: (100 - int(rate), int(rate)) for size, rate in zip(range(1, 8), PLANTED_RATES)}
    counts.update({8: (10, 20), 9: (3, 37), 50: (2, 28)})  # 15 kept, 85 removed in the tail
    distribution = removal_rate_distribution_from_counts(counts, min_docs_per_size=100)
    assert distribution.tail_threshold == 8
    assert distribution.tail_removal_rate_percent == 85.0
    assert distribution.global_removal_rate_percent == 50.0
    assert rehydration_table_from_distribution(distribution, 5) == PLANTED_TABLE


def test_lowest_rate_gets_max_repetitions_before_smoothing() -> None:
    linear = linear_repetitions([80.0, 20.0, 40.0, 70.0], 60.0, max_repetitions=10)
    np.testing.assert_allclose(linear, [1.0, 10.0, 1 + 9 * (40 - 60) / (20 - 60), 1.0])


def test_no_rate_below_global_gives_ones() -> None:
    np.testing.assert_array_equal(linear_repetitions([50.0, 50.0], 50.0, 10), [1.0, 1.0])


def test_max_repetitions_one_gives_ones() -> None:
    assert rehydration_table_from_distribution(planted_distribution(), 1) == {1: 1}


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_max_repetitions_must_be_a_positive_integer(bad: object) -> None:
    with pytest.raises(ValueError, match="max_repetitions"):
        linear_repetitions([10.0], 20.0, bad)  # type: ignore[arg-type]


def test_short_sequences_are_not_smoothed() -> None:
    np.testing.assert_array_equal(smooth_with_moving_average([1, 9, 3, 7]), [1, 9, 3, 7])
    np.testing.assert_array_equal(smooth_with_moving_average([]), [])


def test_five_entries_smooth_only_the_middle() -> None:
    np.testing.assert_allclose(smooth_with_moving_average([1, 2, 9, 4, 5]), [1, 2, 4.2, 4, 5])


def test_rounding_takes_halves_up_not_to_even() -> None:
    values = [0.5, 1.5, 2.5, 3.5, 2.4999999999999996, 4.0]
    assert round_half_up(values).tolist() == [1, 2, 3, 4, 2, 4]


def test_fixed_fineweb2_table() -> None:
    assert rehydration_table("fineweb2_fixed") == {1: 1, 2: 2, 3: 3, 5: 5, 100: 8, 1000: 1}
    assert FINEWEB2_FIXED_TABLE == {1: 1, 2: 2, 3: 3, 5: 5, 100: 8, 1000: 1}


def test_none_table_repeats_every_document_once() -> None:
    assert rehydration_table("none") == {1: 1} == NO_REHYDRATION_TABLE


def test_fixed_tables_are_copies() -> None:
    table = rehydration_table("fineweb2_fixed")
    table[2] = 99
    assert FINEWEB2_FIXED_TABLE[2] == 2


def test_method_selection_checks_its_arguments() -> None:
    assert rehydration_table(
        "removal_rates", distribution=planted_distribution(), max_repetitions=5
    ) == PLANTED_TABLE
    with pytest.raises(ValueError, match="needs a removal rate distribution"):
        rehydration_table("removal_rates", max_repetitions=5)
    with pytest.raises(ValueError, match="fixed table"):
        rehydration_table("none", max_repetitions=5)
    with pytest.raises(ValueError, match="unknown rehydration method"):
        rehydration_table("fixed")  # type: ignore[arg-type]


def test_step_table_writes_a_key_where_repetitions_change() -> None:
    assert step_table_from_repetitions([1, 2, 3, 4, 5], [1, 1, 3, 3, 1]) == {1: 1, 3: 3, 5: 1}


def test_step_table_first_run_starts_at_one() -> None:
    assert step_table_from_repetitions([2, 4, 9], [4, 4, 2]) == {1: 4, 9: 2}


def test_step_table_needs_ascending_sizes() -> None:
    with pytest.raises(ValueError, match="strictly ascending"):
        step_table_from_repetitions([1, 3, 2], [1, 1, 1])


def test_validate_step_table_parses_json_keys_and_sorts() -> None:
    table = validate_step_table({"100": 8, "1": 1, "5": 5})
    assert list(table.items()) == [(1, 1), (5, 5), (100, 8)]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({}, "at least one entry"),
        ({2: 3}, "must start at cluster size 1"),
        ({1: 1, 0: 2}, "not a cluster size"),
        ({1: -1}, "≥ 0"),
        ({1: 1.5}, "integer"),
        ({"x": 1}, "integer"),
        ({1: 1, "1": 2}, "twice"),
    ],
)
def test_validate_step_table_rejects(table: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_step_table(table)
