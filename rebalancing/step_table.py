"""Step tables: how many times a document of a given duplicate-cluster size is repeated.

A step table maps the first cluster size of a run to the number of repetitions for every size
from that key up to (not including) the next key: ``{1: 1, 2: 2, 3: 3, 5: 5, 100: 8, 1000: 1}``
gives a document from a cluster of 4 three repetitions and one from a cluster of 5,000 one.
Every table starts at cluster size 1, so every valid cluster size has an entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeAlias

StepTable: TypeAlias = dict[int, int]
"""{first cluster size of a run: repetitions for every size in that run}, keys ascending."""

FINEWEB2_FIXED_TABLE: StepTable = {1: 1, 2: 2, 3: 3, 5: 5, 100: 8, 1000: 1}
"""The fixed weights FineWeb2 published for every language (its README, "re-hydration")."""

NO_REHYDRATION_TABLE: StepTable = {1: 1}
"""Every document once: rehydration switched off."""


def validate_step_table(table: Mapping[int, int] | Mapping[str, int]) -> StepTable:
    """Return ``table`` as a step table with int keys in ascending order, or raise ``ValueError``.

    Keys may be ints or decimal strings (FineWeb2's JSON writes them as strings). The smallest key
    must be 1 so that every cluster size has an entry; repetitions must be integers ≥ 0 (0 drops
    the documents of that run).
    """
    if not table:
        raise ValueError("a step table needs at least one entry, e.g. {1: 1}")
    parsed: StepTable = {}
    for key, repetitions in table.items():
        cluster_size = _as_int(key, what="step table key")
        repetition_count = _as_int(repetitions, what=f"repetitions for cluster size {cluster_size}")
        if cluster_size < 1:
            raise ValueError(f"step table key {cluster_size} is not a cluster size (must be ≥ 1)")
        if repetition_count < 0:
            raise ValueError(
                f"repetitions for cluster size {cluster_size} is {repetition_count}; must be ≥ 0"
            )
        if cluster_size in parsed:
            raise ValueError(f"cluster size {cluster_size} appears twice in the step table")
        parsed[cluster_size] = repetition_count
    if min(parsed) != 1:
        raise ValueError(
            f"a step table must start at cluster size 1 (its first key is {min(parsed)}), "
            "so that every cluster size has an entry"
        )
    return dict(sorted(parsed.items()))


def step_table_from_repetitions(
    cluster_sizes: Iterable[int], repetitions: Iterable[int]
) -> StepTable:
    """Compress per-size repetitions into a step table ``{first size of a run: repetitions}``.

    ``cluster_sizes`` must be strictly ascending. A key is written wherever the repetitions change;
    the first run's key is 1 even when the first measured size is larger (the first measured value
    is the best estimate for the sizes below it).
    """
    table: StepTable = {}
    previous_size = 0
    previous_repetitions: int | None = None
    for cluster_size, repetition_count in zip(cluster_sizes, repetitions, strict=True):
        cluster_size = int(cluster_size)
        repetition_count = int(repetition_count)
        if cluster_size <= previous_size:
            raise ValueError(
                f"cluster sizes must be ≥ 1 and strictly ascending; got {cluster_size} "
                f"after {previous_size}"
            )
        if repetition_count != previous_repetitions:
            table[1 if previous_repetitions is None else cluster_size] = repetition_count
            previous_repetitions = repetition_count
        previous_size = cluster_size
    if not table:
        raise ValueError("no cluster sizes given: cannot build a step table")
    return table


def _as_int(value: object, *, what: str) -> int:
    """``value`` as an int when it is an integer (int, integral float or decimal string)."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"{what} must be an integer, got {value!r}") from None
    try:
        as_int = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{what} must be an integer, got {value!r}") from None
    if as_int != value:
        raise ValueError(f"{what} must be an integer, got {value!r}")
    return as_int
