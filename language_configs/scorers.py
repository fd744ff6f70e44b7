"""The `scorers` section: model-based quality, toxicity and perplexity scores."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScorersConfig:
    """Scorers add score columns in stage 3; optional thresholds turn a score into a drop."""
