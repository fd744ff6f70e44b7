"""Removal rate per duplicate-cluster size: counted per bucket, merged, turned into a distribution.

Among the documents kept by deduplication (one representative per cluster, carrying the cluster's
size), the quality filters remove some; the removal rate of size s is the share (in %) of
representatives of size s they remove. ``RemovalRateDistribution`` holds the rates in FineWeb2's
distribution format, so the rehydration table is computed by one code path from FineWeb2's
published distributions or from our own counts.

The counts are mergeable: each stage-3 bucket counts ``{cluster size: (kept, removed)}`` for its
documents, the driver sums the buckets with ``merge_filter_outcome_counts`` and only then chooses
the tail threshold and computes the rates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from curate.rebalancing._cluster_sizes import as_cluster_size_array

DEFAULT_MIN_DOCS_PER_SIZE = 100
"""Documents a cluster size needs for its own entry; rarer sizes are pooled in the tail."""


class FilterOutcomeCounts(NamedTuple):
    """Documents of one cluster size (kept by dedup) that the filters kept and removed."""

    kept: int
    removed: int

    @property
    def total(self) -> int:
        """All documents of this cluster size that reached the filters."""
        return self.kept + self.removed


FilterOutcomesBySize = dict[int, FilterOutcomeCounts]
"""{cluster size: (kept by the filters, removed by the filters)}; plain tuples are accepted too."""


@dataclass(frozen=True)
class RemovalRateDistribution:
    """Share of documents removed by the filters, per duplicate-cluster size, for one language.

    Sizes below ``tail_threshold`` each have an entry (sizes with no documents are left out);
    every size ≥ ``tail_threshold`` is pooled into one tail entry. Rates are percentages.
    ``to_fineweb2_dict`` / ``from_fineweb2_dict`` convert to and from FineWeb2's JSON keys.
    """

    cluster_sizes: tuple[int, ...]
    removal_rates_percent: tuple[float, ...]
    documents_kept_by_filters: tuple[int, ...]
    tail_threshold: int
    tail_removal_rate_percent: float
    tail_documents_kept_by_filters: int
    global_removal_rate_percent: float

    def __post_init__(self) -> None:
        entries = len(self.cluster_sizes)
        if (
            len(self.removal_rates_percent) != entries
            or len(self.documents_kept_by_filters) != entries
        ):
            raise ValueError(
                f"a removal rate distribution needs one rate and one count per cluster size: "
                f"{entries} sizes, {len(self.removal_rates_percent)} rates, "
                f"{len(self.documents_kept_by_filters)} counts"
            )
        previous_size = 0
        for cluster_size in self.cluster_sizes:
            if cluster_size <= previous_size:
                raise ValueError(
                    f"cluster sizes must be ≥ 1 and strictly ascending; got {cluster_size} "
                    f"after {previous_size}"
                )
            previous_size = cluster_size
        if self.tail_threshold <= previous_size:
            raise ValueError(
                f"tail threshold {self.tail_threshold} must exceed the largest listed cluster "
                f"size {previous_size}"
            )
        size_rates = zip(self.cluster_sizes, self.removal_rates_percent)
        for name, rate in [
            *((f"removal rate of size {size}", rate) for size, rate in size_rates),
            ("tail removal rate", self.tail_removal_rate_percent),
            ("global removal rate", self.global_removal_rate_percent),
        ]:
            if not (math.isfinite(rate) and 0.0 <= rate <= 100.0):
                raise ValueError(f"{name} is {rate!r}; a removal rate is a percentage in [0, 100]")

    @property
    def entry_cluster_sizes(self) -> tuple[int, ...]:
        """The listed sizes followed by the tail threshold: one size per rehydration entry."""
        return (*self.cluster_sizes, self.tail_threshold)

    @property
    def entry_removal_rates_percent(self) -> tuple[float, ...]:
        """The listed rates followed by the tail rate, aligned with ``entry_cluster_sizes``."""
        return (*self.removal_rates_percent, self.tail_removal_rate_percent)

    def to_fineweb2_dict(self) -> dict[str, Any]:
        """The distribution under FineWeb2's JSON keys, in FineWeb2's key order."""
        return {
            "cluster_sizes": list(self.cluster_sizes),
            "cluster_removal_rates": list(self.removal_rates_percent),
            "cluster_post_filtering_doc_counts": list(self.documents_kept_by_filters),
            "tail_threshold": self.tail_threshold,
            "tail_removal_rate": self.tail_removal_rate_percent,
            "tail_post_filtering_doc_counts": self.tail_documents_kept_by_filters,
            "global_removal_rate": self.global_removal_rate_percent,
        }

    @classmethod
    def from_fineweb2_dict(cls, fields: Mapping[str, Any]) -> RemovalRateDistribution:
        """Read a distribution in FineWeb2's format (the dict of one ``distributions/*.json``)."""
        missing = [key for key in _FINEWEB2_KEYS if key not in fields]
        if missing:
            raise ValueError(
                f"not a FineWeb2 removal rate distribution: missing {', '.join(missing)} "
                f"(expected keys: {', '.join(_FINEWEB2_KEYS)})"
            )
        return cls(
            cluster_sizes=tuple(int(size) for size in fields["cluster_sizes"]),
            removal_rates_percent=tuple(float(rate) for rate in fields["cluster_removal_rates"]),
            documents_kept_by_filters=tuple(
                int(count) for count in fields["cluster_post_filtering_doc_counts"]
            ),
            tail_threshold=int(fields["tail_threshold"]),
            tail_removal_rate_percent=float(fields["tail_removal_rate"]),
            tail_documents_kept_by_filters=int(fields["tail_post_filtering_doc_counts"]),
            global_removal_rate_percent=float(fields["global_removal_rate"]),
        )


_FINEWEB2_KEYS = (
    "cluster_sizes",
    "cluster_removal_rates",
    "cluster_post_filtering_doc_counts",
    "tail_threshold",
    "tail_removal_rate",
    "tail_post_filtering_doc_counts",
    "global_removal_rate",
)


def count_filter_outcomes(cluster_sizes: ArrayLike, removed: ArrayLike) -> FilterOutcomesBySize:
    """Count, per cluster size, the documents the filters kept and removed.

    ``cluster_sizes`` (ints ≥ 1) and ``removed`` (bools) are aligned per document, over the
    documents kept by dedup; numpy arrays, lists, polars Series and pyarrow arrays without nulls
    all work. What counts as removed is the caller's decision (stage 3: the heuristic and precision
    filters).
    """
    sizes = as_cluster_size_array(cluster_sizes)
    removed_mask = np.asarray(removed).reshape(-1)
    if removed_mask.size == 0:
        removed_mask = removed_mask.astype(np.bool_)
    if removed_mask.dtype != np.bool_:
        raise ValueError(f"'removed' must be booleans, got dtype {removed_mask.dtype}")
    if removed_mask.shape != sizes.shape:
        raise ValueError(
            f"one 'removed' flag per document: {sizes.shape[0]} cluster sizes, "
            f"{removed_mask.shape[0]} flags"
        )
    distinct_sizes, size_index = np.unique(sizes, return_inverse=True)
    documents = np.bincount(size_index, minlength=distinct_sizes.shape[0])
    removed_documents = np.bincount(size_index[removed_mask], minlength=distinct_sizes.shape[0])
    return {
        int(size): FilterOutcomeCounts(kept=int(total - gone), removed=int(gone))
        for size, total, gone in zip(distinct_sizes, documents, removed_documents)
    }


def merge_filter_outcome_counts(
    counts_per_worker: Iterable[Mapping[int, tuple[int, int]]],
) -> FilterOutcomesBySize:
    """Sum ``{cluster size: (kept, removed)}`` counts from several buckets or workers.

    Order does not matter; keys may be ints or decimal strings (counts that went through JSON).
    """
    merged: dict[int, tuple[int, int]] = {}
    for counts in counts_per_worker:
        for cluster_size, (kept, removed) in counts.items():
            size = int(cluster_size)
            if size < 1:
                raise ValueError(f"cluster size {size} is not ≥ 1")
            if kept < 0 or removed < 0:
                raise ValueError(f"negative document count for cluster size {size}")
            kept_so_far, removed_so_far = merged.get(size, (0, 0))
            merged[size] = (kept_so_far + int(kept), removed_so_far + int(removed))
    return {size: FilterOutcomeCounts(*merged[size]) for size in sorted(merged)}


def choose_tail_threshold(
    documents_by_size: Mapping[int, int], min_docs_per_size: int = DEFAULT_MIN_DOCS_PER_SIZE
) -> int:
    """The first cluster size from which every size has fewer than ``min_docs_per_size`` documents.

    That is one more than the largest size with at least ``min_docs_per_size`` documents (1 when
    there is none), capped at the largest size present so that the tail is never empty.
    """
    if min_docs_per_size < 1:
        raise ValueError(f"min_docs_per_size must be ≥ 1, got {min_docs_per_size}")
    present_sizes = [size for size, documents in documents_by_size.items() if documents > 0]
    if not present_sizes:
        raise ValueError("no documents counted: cannot choose a tail threshold")
    frequent_sizes = [
        size for size, documents in documents_by_size.items() if documents >= min_docs_per_size
    ]
    first_rare_size = max(frequent_sizes) + 1 if frequent_sizes else 1
    return min(first_rare_size, max(present_sizes))


def removal_rate_distribution_from_counts(
    counts: Mapping[int, tuple[int, int]],
    *,
    min_docs_per_size: int = DEFAULT_MIN_DOCS_PER_SIZE,
    tail_threshold: int | None = None,
) -> RemovalRateDistribution:
    """Turn merged ``{cluster size: (kept, removed)}`` counts into a removal rate distribution.

    The tail threshold is chosen with ``choose_tail_threshold(…, min_docs_per_size)`` unless
    ``tail_threshold`` is given. Rates are ``removed / total * 100`` computed as FineWeb2 does
    (``(total - kept) / total * 100``), so FineWeb2's own counts give its floats bit for bit.
    """
    merged = merge_filter_outcome_counts([counts])
    documents_by_size = {size: outcome.total for size, outcome in merged.items()}
    if tail_threshold is None:
        tail_threshold = choose_tail_threshold(documents_by_size, min_docs_per_size)
    elif tail_threshold < 1:
        raise ValueError(f"tail_threshold must be ≥ 1, got {tail_threshold}")

    listed = [
        (size, outcome)
        for size, outcome in merged.items()
        if size < tail_threshold and outcome.total > 0
    ]
    tail_kept = sum(outcome.kept for size, outcome in merged.items() if size >= tail_threshold)
    tail_total = sum(outcome.total for size, outcome in merged.items() if size >= tail_threshold)
    if tail_total == 0:
        raise ValueError(
            f"no documents of cluster size ≥ {tail_threshold}: the tail entry would be empty; "
            "choose a smaller tail_threshold"
        )
    all_kept = tail_kept + sum(outcome.kept for _, outcome in listed)
    all_total = tail_total + sum(outcome.total for _, outcome in listed)
    return RemovalRateDistribution(
        cluster_sizes=tuple(size for size, _ in listed),
        removal_rates_percent=tuple(_removal_rate_percent(o.kept, o.total) for _, o in listed),
        documents_kept_by_filters=tuple(outcome.kept for _, outcome in listed),
        tail_threshold=tail_threshold,
        tail_removal_rate_percent=_removal_rate_percent(tail_kept, tail_total),
        tail_documents_kept_by_filters=tail_kept,
        global_removal_rate_percent=_removal_rate_percent(all_kept, all_total),
    )


def _removal_rate_percent(kept: int, total: int) -> float:
    """Share of ``total`` documents not kept, in %, with FineWeb2's float operation order."""
    return (total - kept) / total * 100
