"""The `lid` section: which language-ID model a language uses and the minimum score for each model."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LidConfig:
    """Language identification for one language.

    model: `glotlid` (GlotLID v3 from the Hugging Face Hub), `ft176` (fastText lid.176.ftz shipped with curate as
    package data, offline) or a path to a fastText model file.
    min_score: minimum `language_score` for a document to be kept, per model name (scores of different
    models are not comparable: FineWeb2's thresholds are GlotLID scores).
    """

    model: str = "glotlid"
    min_score: dict[str, float] = field(default_factory=dict)
