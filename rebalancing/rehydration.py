"""Rehydration tables: repetitions per duplicate-cluster size from filter removal rates.

FineWeb2's per-language rule. With r_s the removal rate of cluster size s (sizes ≥ the tail
threshold T pooled into one entry at T), R the language's overall removal rate and M the maximum
number of repetitions:

    repetitions_s = 1                                        where r_s ≥ R
    repetitions_s = 1 + (M − 1) · (r_s − R) / (min r − R)    where r_s < R

so the size whose documents the filters remove least gets M repetitions and sizes removed at least
as often as average get one. The sequence is smoothed with a 5-wide centred moving average (the
two first and two last entries are left as they are), rounded half up, and stored as the step table
{first size of a run: repetitions}.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike

from curate.rebalancing.removal_rates import RemovalRateDistribution
from curate.rebalancing.step_table import (
    FINEWEB2_FIXED_TABLE,
    NO_REHYDRATION_TABLE,
    StepTable,
    step_table_from_repetitions,
)

SMOOTHING_WINDOW = 5
"""Width of FineWeb2's centred moving average; the window//2 entries at each end stay unsmoothed."""

RehydrationMethod: TypeAlias = Literal["removal_rates", "fineweb2_fixed", "none"]
"""``removal_rates``: FineWeb2's per-language rule; ``fineweb2_fixed``: its fixed table;
``none``: every document once."""


def linear_repetitions(
    removal_rates_percent: ArrayLike, global_removal_rate_percent: float, max_repetitions: int
) -> np.ndarray:
    """Unsmoothed, unrounded repetitions per entry: 1 where r ≥ R, else 1 + (M−1)(r−R)/(min r − R).

    When no rate is below the global rate every entry gets 1.
    """
    _check_max_repetitions(max_repetitions)
    rates = np.asarray(removal_rates_percent, dtype=np.float64)
    global_rate = float(global_removal_rate_percent)
    repetitions = np.ones_like(rates)
    below_global = rates < global_rate
    if below_global.any():
        lowest_rate = rates.min()
        repetitions[below_global] = 1 + (max_repetitions - 1) * (
            rates[below_global] - global_rate
        ) / (lowest_rate - global_rate)
    return repetitions


def smooth_with_moving_average(values: ArrayLike, window: int = SMOOTHING_WINDOW) -> np.ndarray:
    """Centred moving average of odd width ``window``; the ``window // 2`` entries at each end
    (too close to the edge for a full window) keep their value."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"the moving-average window must be a positive odd width, got {window}")
    series = np.asarray(values, dtype=np.float64)
    smoothed = series.copy()
    half_window = window // 2
    if series.shape[0] >= window:
        windows = np.lib.stride_tricks.sliding_window_view(series, window)
        smoothed[half_window : series.shape[0] - half_window] = windows.sum(axis=1) / window
    return smoothed


def round_half_up(values: ArrayLike) -> np.ndarray:
    """Round non-negative values to the nearest integer, halves up (2.5 → 3, 3.5 → 4).

    Not ``round()``/``np.round`` (halves to even). FineWeb2's published tables have no value
    within 3·10⁻⁴ of a half, so either reproduces them; half up is the rule that does not depend
    on parity. Exact: the fraction is taken before comparing, no ``x + 0.5`` rounding error.
    """
    array = np.asarray(values, dtype=np.float64)
    whole = np.floor(array)
    return (whole + (array - whole >= 0.5)).astype(np.int64)


def repetitions_per_entry(
    distribution: RemovalRateDistribution, max_repetitions: int
) -> np.ndarray:
    """Integer repetitions for each entry of ``distribution.entry_cluster_sizes`` (tail last):
    the linear rule, then the moving average, then rounding half up."""
    linear = linear_repetitions(
        distribution.entry_removal_rates_percent,
        distribution.global_removal_rate_percent,
        max_repetitions,
    )
    return round_half_up(smooth_with_moving_average(linear))


def rehydration_table_from_distribution(
    distribution: RemovalRateDistribution, max_repetitions: int
) -> StepTable:
    """FineWeb2's per-language step table {first size of a run: repetitions} for ``distribution``.

    Reproduces FineWeb2's published ``up_to_10_reps`` / ``up_to_05_reps`` tables from its
    distributions with ``max_repetitions`` 10 and 5.
    """
    return step_table_from_repetitions(
        distribution.entry_cluster_sizes, repetitions_per_entry(distribution, max_repetitions)
    )


def rehydration_table(
    method: RehydrationMethod,
    *,
    distribution: RemovalRateDistribution | None = None,
    max_repetitions: int | None = None,
) -> StepTable:
    """The step table for ``method``: ``removal_rates`` (needs ``distribution`` and
    ``max_repetitions``), ``fineweb2_fixed`` ({1:1, 2:2, 3:3, 5:5, 100:8, 1000:1}) or ``none``
    ({1: 1}). The fixed methods take no other argument."""
    if method == "removal_rates":
        if distribution is None or max_repetitions is None:
            raise ValueError(
                "rehydration method 'removal_rates' needs a removal rate distribution "
                "and max_repetitions"
            )
        return rehydration_table_from_distribution(distribution, max_repetitions)
    if method in ("fineweb2_fixed", "none"):
        if distribution is not None or max_repetitions is not None:
            raise ValueError(
                f"rehydration method {method!r} is a fixed table: it takes no distribution "
                "or max_repetitions"
            )
        return dict(FINEWEB2_FIXED_TABLE if method == "fineweb2_fixed" else NO_REHYDRATION_TABLE)
    raise ValueError(
        f"unknown rehydration method {method!r}; choose 'removal_rates', 'fineweb2_fixed' or 'none'"
    )


def _check_max_repetitions(max_repetitions: int) -> None:
    """Raise ``ValueError`` unless ``max_repetitions`` is an integer ≥ 1."""
    if isinstance(max_repetitions, bool) or not isinstance(max_repetitions, (int, np.integer)):
        raise ValueError(f"max_repetitions must be an integer ≥ 1, got {max_repetitions!r}")
    if max_repetitions < 1:
        raise ValueError(f"max_repetitions must be ≥ 1, got {max_repetitions}")
