"""Duplication-aware upsampling ("rehydration"): statistics in, step table out.

Deduplication keeps one document per near-duplicate cluster and records the cluster's size.
Rehydration repeats a kept document a number of times that depends on that size, favouring the
sizes whose documents the quality filters remove least. Pure: no Ray, no I/O beyond the JSON
helpers of ``rebalancing.fineweb2_json``.

Flow: stage-3 buckets ``count_filter_outcomes`` → driver ``merge_filter_outcome_counts`` →
``removal_rate_distribution_from_counts`` → ``rehydration_table`` →
``repetitions_for_cluster_sizes`` gives each document's weight.
"""

from curate.rebalancing.fineweb2_json import (
    distribution_to_json,
    distributions_from_json,
    read_distributions,
    rehydration_command,
    rehydration_weights,
    weights_to_json,
)
from curate.rebalancing.lookup import repetitions_for_cluster_sizes
from curate.rebalancing.rehydration import (
    SMOOTHING_WINDOW,
    RehydrationMethod,
    linear_repetitions,
    rehydration_table,
    rehydration_table_from_distribution,
    repetitions_per_entry,
    round_half_up,
    smooth_with_moving_average,
)
from curate.rebalancing.removal_rates import (
    DEFAULT_MIN_DOCS_PER_SIZE,
    FilterOutcomeCounts,
    FilterOutcomesBySize,
    RemovalRateDistribution,
    choose_tail_threshold,
    count_filter_outcomes,
    merge_filter_outcome_counts,
    removal_rate_distribution_from_counts,
)
from curate.rebalancing.step_table import (
    FINEWEB2_FIXED_TABLE,
    NO_REHYDRATION_TABLE,
    StepTable,
    step_table_from_repetitions,
    validate_step_table,
)

__all__ = [
    "DEFAULT_MIN_DOCS_PER_SIZE",
    "FINEWEB2_FIXED_TABLE",
    "NO_REHYDRATION_TABLE",
    "SMOOTHING_WINDOW",
    "FilterOutcomeCounts",
    "FilterOutcomesBySize",
    "RehydrationMethod",
    "RemovalRateDistribution",
    "StepTable",
    "choose_tail_threshold",
    "count_filter_outcomes",
    "distribution_to_json",
    "distributions_from_json",
    "linear_repetitions",
    "merge_filter_outcome_counts",
    "read_distributions",
    "rehydration_command",
    "rehydration_table",
    "rehydration_table_from_distribution",
    "rehydration_weights",
    "removal_rate_distribution_from_counts",
    "repetitions_for_cluster_sizes",
    "repetitions_per_entry",
    "round_half_up",
    "smooth_with_moving_average",
    "step_table_from_repetitions",
    "validate_step_table",
    "weights_to_json",
]
