"""Early-signal statistics and the aggregate of seeds, on curves whose numbers are worked out by hand."""

from __future__ import annotations

import math

import pytest

from curate.errors import UserError
from curate.pipeline.ablation import parse_seeds, parse_tokens
from curate.pipeline.ablation.report import aggregate_runs
from curate.pipeline.ablation.stats import monotonicity, ordering_consistency, pooled_seed_std, step_gains, summarize

TOKENS = [0, 100, 200, 300]


def test_monotonicity_is_spearman_of_tokens_and_minus_bpb() -> None:
    assert monotonicity(TOKENS, [4.0, 3.0, 2.5, 2.0]) == pytest.approx(1.0)
    assert monotonicity(TOKENS, [2.0, 2.5, 3.0, 4.0]) == pytest.approx(-1.0)
    # ranks of −bpb: 1, 3, 2, 4 → ρ = 1 − 6·(0 + 1 + 1 + 0) / (4 · 15) = 0.8
    assert monotonicity(TOKENS, [4.0, 3.0, 3.5, 2.0]) == pytest.approx(0.8)
    assert monotonicity(TOKENS, [3.0] * 4) is None and monotonicity(TOKENS[:2], [4.0, 3.0]) is None


def test_signal_to_noise_of_each_step() -> None:
    curves = {"raw": [[5.0, 4.0], [5.0, 4.2]], "lid": [[5.0, 3.9], [5.0, 3.9]], "filtered": [[5.0, 3.5], [5.0, 3.7]]}
    # final-bpb variances between seeds: raw 0.02, lid 0, filtered 0.02
    assert pooled_seed_std(curves) == pytest.approx(math.sqrt(0.04 / 3))
    steps = step_gains(curves, ["raw", "lid", "dedup", "filtered"])
    assert [(s["from"], s["to"]) for s in steps] == [("raw", "lid"), ("lid", "filtered")]
    assert steps[0]["gain"] == pytest.approx(0.2) and steps[0]["snr"] == pytest.approx(0.2 / math.sqrt(0.01))
    assert steps[1]["gain"] == pytest.approx(0.3) and steps[1]["snr"] == pytest.approx(0.3 / math.sqrt(0.01))
    summary = summarize([0, 10], curves, ["raw", "lid", "filtered"])
    assert summary["variant_gap"] == pytest.approx(0.5)
    assert summary["snr"] == pytest.approx(0.5 / math.sqrt(0.04 / 3))
    assert summary["seed_std"]["lid"] == 0.0 and summary["seed_std"]["raw"] == pytest.approx(math.sqrt(0.02))
    assert summary["best"] == "filtered"


def test_one_seed_has_no_noise_estimate() -> None:
    summary = summarize(TOKENS, {"raw": [[5, 4, 3, 2]], "filtered": [[5, 3, 2, 1]]}, ["raw", "filtered"])
    assert summary["pooled_seed_std"] is None and summary["snr"] is None and summary["steps"][0]["snr"] is None
    assert summary["steps"][0]["gain"] == pytest.approx(1.0)
    assert summary["monotonicity"] == {"raw": pytest.approx(1.0), "filtered": pytest.approx(1.0)}


def test_ordering_consistency_over_the_second_half() -> None:
    steady = {"a": [[9, 5, 4, 3, 2, 1]], "b": [[9, 6, 5, 4, 3, 2]], "c": [[9, 7, 6, 5, 4, 3]]}
    assert ordering_consistency(steady) == pytest.approx(1.0)
    # second half (evaluations 3..5): rankings (a<b<c), (a<b<c), then b and c swap: τ = 1 and 1/3
    swapped = {"a": [[9, 5, 4, 3, 2, 1]], "b": [[9, 6, 5, 4, 3, 4]], "c": [[9, 7, 6, 5, 4, 3]]}
    assert ordering_consistency(swapped) == pytest.approx((1 + 1 / 3) / 2)
    assert ordering_consistency({"a": [[3, 2, 1]], "b": [[3, 2, 2]]}) is None  # two variants


def test_aggregate_of_seeds() -> None:
    runs = {"raw": [{"tokens": [0, 10], "bpb": [5.0, 4.0], "loss": [7.0, 6.0]},
                    {"tokens": [0, 10], "bpb": [5.0, 4.2], "loss": [7.0, 6.4]}]}
    row = aggregate_runs(runs)["raw"]
    assert row["tokens"] == [0, 10] and row["seeds"] == 2
    assert row["bpb"] == pytest.approx([5.0, 4.1]) and row["final_bpb"] == pytest.approx(4.1)
    assert row["bpb_std"] == pytest.approx([0.0, math.sqrt(0.02)])
    assert row["final_bpb_std"] == pytest.approx(math.sqrt(0.02))
    assert (row["bpb_min"], row["bpb_max"]) == ([5.0, 4.0], [5.0, 4.2])
    assert row["final_loss"] == pytest.approx(6.2)
    assert aggregate_runs({"raw": runs["raw"][:1]})["raw"]["final_bpb_std"] is None


def test_token_counts_and_seeds() -> None:
    assert parse_tokens("20M") == 20_000_000 and parse_tokens("500k") == 500_000
    assert parse_tokens("1.5B") == 1_500_000_000 and parse_tokens("60000") == 60_000
    assert parse_tokens("2_000") == 2_000
    for bad in ("20 tokens", "", "-5", "0"):
        with pytest.raises(UserError, match="--tokens"):
            parse_tokens(bad)
    assert parse_seeds("0,1, 2") == [0, 1, 2]
    with pytest.raises(UserError, match="distinct"):
        parse_seeds("1,1")
    with pytest.raises(UserError, match="integers"):
        parse_seeds("a")
