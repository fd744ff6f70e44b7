"""The `scorers:` config section: defaults, parsing, validation, and the blocks `scorer_blocks` builds from it."""

from __future__ import annotations

import dataclasses

import pytest

from curate.blocks.score_perplexity import Perplexity
from curate.blocks.score_quality import QualityClassifier
from curate.blocks.score_toxicity import AdultDomain, ToxicityClassifier, ToxicityLexicon
from curate.blocks.score_web_docs import WebDocsScore
from curate.blocks.scorers import scorer_blocks
from curate.language_configs import ConfigError
from curate.language_configs.schema import LanguageConfig, load_language_config
from curate.language_configs.scorers import ScorersConfig
from curate.language_configs.validate import from_dict


def scorer_columns(config: LanguageConfig) -> tuple[str, ...]:
    """The score columns the language's scorers add."""
    return tuple(c for block in scorer_blocks(config) for c in block.writes if c != "drop_reason")


def with_scorers(code: str, section: dict) -> LanguageConfig:
    config = load_language_config(code)
    return dataclasses.replace(config, scorers=from_dict(ScorersConfig, section, "scorers"))


def test_defaults_are_the_model_free_scorers() -> None:
    config = load_language_config("fin_Latn")
    assert config.scorers.quality is None and config.scorers.perplexity is None
    assert config.scorers.toxicity is not None and config.scorers.toxicity.words is None
    blocks = scorer_blocks(config)
    assert [type(b) for b in blocks] == [WebDocsScore, AdultDomain]
    assert scorer_columns(config) == ("web_docs_score", "adult_domain")
    assert blocks[0].settings.min_score is None  # score only, no drop by default


def test_every_shipped_language_builds_its_scorers() -> None:
    from curate.language_configs import configured_languages

    for code in configured_languages():
        blocks = scorer_blocks(load_language_config(code))
        assert isinstance(blocks[0], WebDocsScore), code


def test_a_full_section_builds_every_scorer_in_order() -> None:
    config = with_scorers("cmn_Hani", {
        "web_docs": {"min_score": 3, "typical_punctuation_percent": 9.9},
        "quality": {"model": "q.bin", "min_score": 0.5},
        "toxicity": {"words": "zh", "max_share": 0.01,
                     "classifier": {"model": "t.bin", "label": "__label__toxic", "max_score": 0.9},
                     "adult_domains": False},
        "perplexity": {"model": "cmn.binary", "max_perplexity": 5000},
    })
    blocks = scorer_blocks(config)
    assert [type(b) for b in blocks] == [WebDocsScore, QualityClassifier, ToxicityLexicon, ToxicityClassifier,
                                         Perplexity]
    quality, lexicon, classifier, perplexity = blocks[1:]
    assert (quality.model, quality.label, quality.threshold, quality.language) == ("q.bin", "__label__hq", 0.5,
                                                                                   "cmn_Hani")
    assert lexicon.unspaced and lexicon.max_share == 0.01  # Han is written without spaces
    assert (classifier.label, classifier.threshold) == ("__label__toxic", 0.9)
    assert perplexity.settings.max_perplexity == 5000
    assert scorer_columns(config) == ("web_docs_score", "quality_score", "toxicity_share", "toxicity_count",
                                      "toxicity_score", "perplexity")
    assert not scorer_blocks(with_scorers("fin_Latn", {"toxicity": {"words": "fi"}}))[1].unspaced


def test_null_switches_scorers_off() -> None:
    assert scorer_blocks(with_scorers("fin_Latn", {"web_docs": None, "toxicity": None})) == []


@pytest.mark.parametrize("section, message", [
    ({"web_docs": {"min_score": 11}}, "scorers.web_docs.min_score: between 0 and 10"),
    ({"web_docs": {"typical_digit_percent": 0}}, "scorers.web_docs.typical_digit_percent: a positive percentage"),
    ({"quality": {"label": "__label__hq"}}, "scorers.quality: missing key 'model'"),
    ({"quality": {"model": "q.bin", "min_score": 1.5}}, "scorers.quality.min_score: between 0 and 1"),
    ({"toxicity": {"max_share": 0.1}}, "scorers.toxicity.max_share is set but words is null"),
    ({"toxicity": {"classifier": {"model": "t.bin", "max_score": -1}}},
     "scorers.toxicity.classifier.max_score: between 0 and 1"),
    ({"perplexity": {"model": "m.arpa", "max_perplexity": -5}}, "scorers.perplexity.max_perplexity: at least 0"),
    ({"perplexity": {"model": "m.arpa", "max_perplexty": 5}}, "unknown key 'max_perplexty'"),
    ({"toxicity": {"adult_domains": "yes"}}, "scorers.toxicity.adult_domains: expected true or false"),
])
def test_mistakes_name_the_key(section: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        from_dict(ScorersConfig, section, "scorers")
    assert message in str(error.value)


def test_blocks_pickle_without_models() -> None:
    import pickle

    config = with_scorers("fin_Latn", {"quality": {"model": "q.bin"}, "perplexity": {"model": "m.arpa"},
                                       "toxicity": {"words": "fi"}})
    for block in scorer_blocks(config):
        assert pickle.loads(pickle.dumps(block)) == block


def test_every_field_has_a_docstring() -> None:
    from curate.language_configs import scorers
    from field_docs import field_docs

    for name in dir(scorers):
        cls = getattr(scorers, name)
        if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == scorers.__name__:
            assert [f.name for f in dataclasses.fields(cls)] == list(field_docs(cls)), cls.__name__
