"""The `lid` section: which language-ID model a language uses, the minimum score for each model, and the
settings of the cheap LID pass that decides which pages are worth extracting (`prefilter`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PrefilterSettings:
    """The cheap pass for one LID model, run on the whole page's plain text before trafilatura: a page goes on
    to extraction if this language (or one of `also`, labels the model gives its pages on boilerplate-heavy
    text, such as a close relative) is among the model's `top_k` labels with probability >= `min_score`."""

    top_k: int
    min_score: float
    also: list[str] = field(default_factory=list)


def default_prefilter() -> dict[str, PrefilterSettings]:
    """The shipped defaults, chosen on one half of the recall test's pages (docs/performance.md)."""
    return {"glotlid": PrefilterSettings(top_k=5, min_score=0.2), "ft176": PrefilterSettings(top_k=3, min_score=0.2)}


@dataclass(frozen=True)
class LidConfig:
    """Language identification for one language.

    model: `glotlid` (GlotLID v3 from the Hugging Face Hub), `ft176` (fastText lid.176.ftz shipped with curate as
    package data, offline) or a path to a fastText model file.
    min_score: minimum `language_score` for a document to be kept, per model name (scores of different
    models are not comparable: FineWeb2's thresholds are GlotLID scores).
    prefilter: the cheap pass before extraction, per model name (`glotlid`, `ft176`, `custom` for a path), or
    null to extract every page; a model without an entry extracts every page of the run.
    """

    model: str = "glotlid"
    min_score: dict[str, float] = field(default_factory=dict)
    prefilter: dict[str, PrefilterSettings] | None = field(default_factory=default_prefilter)
