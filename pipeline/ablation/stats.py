"""Early-signal statistics of an ablation: can these curves be trusted to rank the variants?

FineWeb2 kept an evaluation only when small-model curves gave a usable signal early in training:

* **monotonicity**: Spearman's ρ between training tokens and the score; here the score is −bpb, so
  1 means bits per byte fell at every evaluation and values near 0 mean the curve is noise;
* **signal-to-noise**: the gap between variants against the spread between seeds of one variant
  (`gap / seed std`; it needs two or more seeds);
* **ordering consistency**: Kendall's τ between the variants' rankings at consecutive evaluations
  of the second half of training (1: the ranking never changes).

Everything here is pure: curves in, numbers out.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats as scipy_stats

Curves = Mapping[str, Sequence[Sequence[float]]]
"""Variant → one bpb curve per seed, all evaluated at the same token counts."""


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def monotonicity(tokens: Sequence[float], bpb: Sequence[float]) -> float | None:
    """Spearman's ρ between tokens and −bpb (1: bpb falls at every evaluation); None below 3 points
    or for a flat curve."""
    if len(tokens) < 3 or np.ptp(np.asarray(bpb, float)) == 0:
        return None
    return _finite(scipy_stats.spearmanr(tokens, -np.asarray(bpb, float)).statistic)


def seed_std(curves: Sequence[Sequence[float]]) -> float | None:
    """Sample standard deviation of the final bpb over seeds; None for one seed."""
    finals = [c[-1] for c in curves]
    return float(np.std(finals, ddof=1)) if len(finals) > 1 else None


def pooled_seed_std(curves: Curves) -> float | None:
    """Square root of the mean over variants of the final-bpb variance between seeds."""
    variances = [np.var([c[-1] for c in runs], ddof=1) for runs in curves.values() if len(runs) > 1]
    return float(math.sqrt(np.mean(variances))) if variances else None


def ordering_consistency(curves: Curves) -> float | None:
    """Mean Kendall τ between the variants' rankings (by mean bpb) at consecutive evaluations of the
    second half of training; None with fewer than 3 variants or evaluations."""
    means = np.array([np.mean(np.asarray(runs, float), axis=0) for runs in curves.values()])
    if means.shape[0] < 3 or means.shape[1] < 3:
        return None
    half = means[:, means.shape[1] // 2:]
    taus = [scipy_stats.kendalltau(half[:, i], half[:, i + 1]).statistic for i in range(half.shape[1] - 1)]
    taus = [t for t in taus if math.isfinite(t)]
    return float(np.mean(taus)) if taus else None


def step_gains(curves: Curves, order: Sequence[str]) -> list[dict[str, float | str | None]]:
    """For each curation step (consecutive variants in `order`): the final-bpb gain `from − to`
    (positive: the step helped) and its signal-to-noise ratio `gain / pooled seed std`."""
    gains = []
    names = [name for name in order if name in curves]
    for before, after in itertools.pairwise(names):
        gain = float(np.mean([c[-1] for c in curves[before]]) - np.mean([c[-1] for c in curves[after]]))
        noise = pooled_seed_std({before: curves[before], after: curves[after]})
        gains.append({"from": before, "to": after, "gain": gain,
                      "snr": _finite(gain / noise) if noise else None})
    return gains


def summarize(tokens: Sequence[int], curves: Curves, order: Sequence[str]) -> dict[str, object]:
    """The `statistics` of an ablation (see the module docstring)."""
    finals = {name: float(np.mean([c[-1] for c in runs])) for name, runs in curves.items()}
    noise = pooled_seed_std(curves)
    gap = max(finals.values()) - min(finals.values()) if len(finals) > 1 else None
    return {
        "monotonicity": {name: monotonicity(tokens, np.mean(np.asarray(runs, float), axis=0))
                         for name, runs in curves.items()},
        "seed_std": {name: seed_std(runs) for name, runs in curves.items()},
        "pooled_seed_std": noise,
        "variant_gap": gap,
        "snr": _finite(gap / noise) if gap is not None and noise else None,
        "ordering_consistency": ordering_consistency(curves),
        "steps": step_gains(curves, order),
        "best": min(finals, key=finals.__getitem__) if finals else None,
    }
