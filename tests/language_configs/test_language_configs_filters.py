"""Shipped language configs: all load and validate, keys say what they mean, mistakes get one clear line."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from field_docs import field_docs

from curate.language_configs.filters import FiltersConfig, FormattersConfig, GopherQualityConfig
from curate.language_configs.schema import LanguageConfig, config_path, configured_languages, load_language_config
from curate.language_configs.validate import ConfigError, from_dict

REQUIRED = ["fin_Latn", "ekk_Latn", "swe_Latn", "nob_Latn", "dan_Latn", "deu_Latn", "rus_Cyrl", "cmn_Hani",
            "jpn_Jpan", "tha_Thai", "arb_Arab"]


def test_required_languages_are_shipped():
    assert set(REQUIRED) <= set(configured_languages())


@pytest.mark.parametrize("code", REQUIRED)
def test_shipped_config_is_fineweb2s(code, fineweb2_raw):
    """Every shipped config carries FineWeb2's per-language figures under our names."""
    config = load_language_config(code)
    raw = fineweb2_raw(code)
    assert config.code == code
    assert config.lid.model == "glotlid" and config.lid.min_score["glotlid"] == raw["language_score"]
    assert 0.3 <= config.lid.min_score["ft176"] <= 0.9
    repetition, fineweb, quality = config.filters.gopher_repetition, config.filters.fineweb_quality, \
        config.filters.gopher_quality
    assert repetition.max_dup_line_share == raw["dup_line_frac"]
    assert repetition.max_top_ngram_char_share == dict(raw["top_n_grams"])
    assert repetition.max_dup_ngram_char_share == dict(raw["dup_n_grams"])
    assert repetition.max_dup_para_share is None and repetition.max_dup_line_char_share is None
    assert fineweb.min_punct_line_share == (raw["line_punct_thr"] or None)
    assert fineweb.max_newline_token_ratio == raw["new_line_ratio"]
    assert fineweb.max_dup_line_char_share == 0.1 and fineweb.max_short_line_share is None
    assert quality.min_mean_word_length == (raw["min_avg_word_length"] or None)
    assert quality.max_mean_word_length == raw["max_avg_word_length"]
    assert quality.min_alpha_token_share == raw["max_non_alpha_words_ratio"]
    assert quality.stopwords == raw["stopwords"] and quality.min_stopword_count == 2
    assert config.word_tokenizer == "datatrove"
    assert config.filters.c4 is None and config.filters.precision is None
    assert config.formatters == FormattersConfig()


def test_disabled_checks_are_null_not_magic_numbers():
    for code in REQUIRED:
        text = config_path(code).read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        for section in data["filters"].values():
            for key, value in (section or {}).items():
                assert value not in (999, -1), (code, key)
                if key.startswith(("max_", "min_")) and not isinstance(value, dict):
                    assert value != 0, (code, key)  # 0 is a real threshold here, never "off"
    assert load_language_config("deu_Latn").filters.fineweb_quality.min_punct_line_share is None
    assert load_language_config("tha_Thai").filters.fineweb_quality.min_punct_line_share is None
    assert load_language_config("deu_Latn").filters.gopher_quality.min_mean_word_length is None


def test_every_field_has_a_docstring():
    from curate.language_configs import filters

    for name in dir(filters):
        cls = getattr(filters, name)
        if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == filters.__name__:
            documented = field_docs(cls)
            assert [f.name for f in dataclasses.fields(cls)] == list(documented), cls.__name__


def test_defaults_build_without_a_filters_section():
    config = from_dict(LanguageConfig, {"language": "xyz", "script": "Latn", "name": "X"}, "x.yaml")
    assert config.filters == FiltersConfig()
    assert config.filters.gopher_quality.min_stopword_count is None  # no stopwords, no stopword check


@pytest.mark.parametrize("change, message", [
    ({"filters": {"gopher_repetition": {"max_dup_line_frac": 0.3}}},
     "x.yaml.filters.gopher_repetition: unknown key 'max_dup_line_frac'"),
    ({"filters": {"gopher_repetition": {"max_dup_line_share": 1.5}}},
     "filters.gopher_repetition.max_dup_line_share: a share between 0 and 1 (or null), got 1.5"),
    ({"filters": {"gopher_quality": {"min_stopword_count": 2}}},
     "filters.gopher_quality.stopwords is empty but min_stopword_count is 2"),
    ({"filters": {"fineweb_quality": {"max_newline_token_ratio": "high"}}},
     "x.yaml.filters.fineweb_quality.max_newline_token_ratio: expected a number, got 'high'"),
    ({"filters": {"gopher_repetition": {"max_top_ngram_char_share": {0: 0.2}}}},
     "n-gram sizes are positive integers, got 0"),
    ({"formatters": {"fix_text": {"normalization": "NFX"}}}, "formatters.fix_text.normalization"),
])
def test_mistakes_are_one_clear_line(change, message):
    data = {"language": "xyz", "script": "Latn", "name": "X", **change}
    with pytest.raises(ConfigError) as error:
        from_dict(LanguageConfig, data, "x.yaml")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_null_switches_a_whole_filter_off():
    data = {"language": "xyz", "script": "Latn", "name": "X",
            "filters": {"gopher_repetition": None, "gopher_quality": {"stopwords": ["a"], "min_stopword_count": 1}},
            "formatters": {"pii": None}}
    config = from_dict(LanguageConfig, data, "x.yaml")
    assert config.filters.gopher_repetition is None and config.filters.fineweb_quality is not None
    assert config.filters.gopher_quality == GopherQualityConfig(stopwords=["a"], min_stopword_count=1)
    assert config.formatters.pii is None and config.formatters.fix_text is not None


def test_unknown_language_names_the_list_and_how_to_add_one():
    with pytest.raises(ConfigError) as error:
        load_language_config("xyz")
    message = str(error.value)
    assert "not one of the 1,929 configured languages (`curate config list`)" in message
    assert "import-fineweb2" in message and "\n" not in message
