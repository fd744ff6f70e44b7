"""Exact reproduction of FineWeb2's published rehydration tables and distributions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from weights_json import weights_from_json

from curate.rebalancing import (
    RemovalRateDistribution,
    distribution_to_json,
    read_distributions,
    rehydration_command,
    rehydration_table_from_distribution,
    removal_rate_distribution_from_counts,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
REHYDRATION = SHARED / "reference" / "fineweb2" / "rehydration"
LANGUAGES = ["fin_Latn", "deu_Latn", "ita_Latn"]  # the order of the published weights files


@pytest.fixture(scope="module")
def reference_dir() -> Path:
    assert REHYDRATION.is_dir(), f"shared FineWeb2 reference data missing: {REHYDRATION}"
    return REHYDRATION


def published_weights(reference_dir: Path, max_repetitions: int) -> str:
    return (reference_dir / "weights" / f"up_to_{max_repetitions:02d}_reps.json").read_text()


@pytest.mark.parametrize("max_repetitions", [10, 5])
@pytest.mark.parametrize("language", LANGUAGES)
def test_table_matches_every_published_entry(
    reference_dir: Path, language: str, max_repetitions: int
) -> None:
    path = reference_dir / "distributions" / f"{language}.json"
    distribution = read_distributions(path)[language]
    expected = weights_from_json(published_weights(reference_dir, max_repetitions))[language]
    assert rehydration_table_from_distribution(distribution, max_repetitions) == expected


@pytest.mark.parametrize("max_repetitions", [10, 5])
def test_command_output_is_byte_identical_to_published_file(
    reference_dir: Path, max_repetitions: int
) -> None:
    paths = [reference_dir / "distributions" / f"{language}.json" for language in LANGUAGES]
    assert rehydration_command(paths, max_repetitions) == published_weights(
        reference_dir, max_repetitions
    )


def test_command_reads_a_directory_in_name_order(reference_dir: Path) -> None:
    weights = json.loads(rehydration_command(reference_dir / "distributions", 10))
    assert list(weights) == sorted(LANGUAGES)
    assert weights == json.loads(published_weights(reference_dir, 10))


@pytest.mark.parametrize("language", LANGUAGES)
def test_distribution_json_round_trips_byte_for_byte(reference_dir: Path, language: str) -> None:
    text = (reference_dir / "distributions" / f"{language}.json").read_text()
    distribution = RemovalRateDistribution.from_fineweb2_dict(json.loads(text))
    assert distribution_to_json(distribution) == text


@pytest.mark.parametrize("language", LANGUAGES)
def test_own_counting_path_reproduces_fineweb2_distribution(
    reference_dir: Path, language: str
) -> None:
    """Counts recovered from FineWeb2's distribution give back its floats bit for bit."""
    text = (reference_dir / "distributions" / f"{language}.json").read_text()
    fields = json.loads(text)
    counts: dict[int, tuple[int, int]] = {}
    for size, rate, kept in zip(
        fields["cluster_sizes"],
        fields["cluster_removal_rates"],
        fields["cluster_post_filtering_doc_counts"],
    ):
        total = round(kept / (1 - rate / 100))
        counts[size] = (kept, total - kept)
    tail_kept = fields["tail_post_filtering_doc_counts"]
    tail_total = round(tail_kept / (1 - fields["tail_removal_rate"] / 100))
    counts[fields["tail_threshold"]] = (tail_kept, tail_total - tail_kept)

    # FineWeb2's rarest listed size has >700 documents, and the pooled tail is the largest size,
    # so the default threshold rule lands on FineWeb2's own threshold.
    rebuilt = removal_rate_distribution_from_counts(counts)
    assert rebuilt.tail_threshold == fields["tail_threshold"]
    assert distribution_to_json(rebuilt) == text
