"""Filter statistics on hand-checked texts: exact values, worked out by hand from the tokens shown."""

from __future__ import annotations

import dataclasses
import math
import random

import pyarrow as pa
import pytest
from filters_helpers import run_blocks

from curate.blocks.statistics import FilterStatistics, _dup_ngram_chars, _top_ngram_chars, statistic_columns
from curate.blocks.words import WordTokens, unicode_words
from curate.language_configs.filters import C4Config, FiltersConfig, GopherQualityConfig

TEXT = "Kissa istuu.\nKissa istuu.\n\nKoira haukkuu kovaa...\n- Lintu lentää #taivaalla"
TOKENS = ["Kissa", "istuu", ".", "Kissa", "istuu", ".", "Koira", "haukkuu", "kovaa", "...", "-", "Lintu", "lentää",
          "#", "taivaalla"]


@pytest.fixture(scope="module")
def config(fin_config):
    quality = dataclasses.replace(fin_config.filters.gopher_quality, stopwords=["Kissa", "istuu", "koira", "ja"])
    return dataclasses.replace(fin_config, filters=dataclasses.replace(fin_config.filters, gopher_quality=quality))


@pytest.fixture(scope="module")
def stats(config) -> dict:
    batch = run_blocks([WordTokens(config), FilterStatistics(config)], [TEXT, ""])
    return {name: batch[name].to_pylist() for name in batch.column_names}


def test_tokens_are_datatrove_spacy_finnish(stats):
    assert stats["words"][0] == TOKENS
    assert stats["words"][1] == []


def test_gopher_repetition_statistics(stats):
    row = {k: v[0] for k, v in stats.items()}
    assert row["stat_char_count"] == 75
    assert row["stat_dup_para_share"] == 0.0  # 2 paragraphs, none repeated
    assert row["stat_dup_para_char_share"] == 0.0
    assert row["stat_dup_line_share"] == 1 / 4  # "Kissa istuu." repeats once among 4 lines
    assert row["stat_dup_line_char_share"] == 12 / 75
    assert row["stat_top_2gram_char_share"] == 2 * len("Kissa istuu") / 75
    assert row["stat_top_3gram_char_share"] == 2 * len("Kissa istuu .") / 75
    assert row["stat_top_4gram_char_share"] == len("Kissa istuu . Kissa") / 75  # all once: the first wins
    for n in range(5, 11):
        assert row[f"stat_dup_{n}gram_char_share"] == 0.0


def test_fineweb_quality_statistics(stats):
    row = {k: v[0] for k, v in stats.items()}
    assert row["stat_nonblank_line_count"] == 4
    assert row["stat_punct_line_share"] == 3 / 4  # ".", ".", "..." end lines; "taivaalla" does not
    assert row["stat_short_line_share"] == 1.0  # all lines have at most 30 characters
    assert row["stat_dup_nonblank_line_char_share"] == 12 / 71  # newlines do not count
    assert row["stat_newline_token_ratio"] == 4 / 15


def test_gopher_quality_statistics(stats):
    row = {k: v[0] for k, v in stats.items()}
    assert row["stat_token_count"] == 15
    assert row["stat_word_count"] == 10  # ".", ".", "...", "-", "#" are all punctuation
    assert row["stat_mean_word_length"] == 57 / 10
    assert row["stat_hash_token_ratio"] == 1 / 15
    assert row["stat_ellipsis_token_ratio"] == 1 / 15
    assert row["stat_bullet_line_share"] == 1 / 5  # splitlines keeps the blank line: 5 lines
    assert row["stat_ellipsis_line_share"] == 1 / 5
    assert row["stat_alpha_token_share"] == 10 / 15
    assert row["stat_stopword_count"] == 2  # Kissa, istuu; "koira" ≠ "Koira": case-sensitive


def test_empty_text_gives_nan_ratios(stats):
    row = {k: v[1] for k, v in stats.items()}
    assert row["stat_char_count"] == 0 and row["stat_token_count"] == 0 and row["stat_nonblank_line_count"] == 0
    assert row["stat_dup_line_share"] == 0.0  # one empty line, not repeated
    for name in ("stat_dup_line_char_share", "stat_top_2gram_char_share", "stat_punct_line_share",
                 "stat_newline_token_ratio", "stat_mean_word_length", "stat_alpha_token_share",
                 "stat_bullet_line_share"):
        assert math.isnan(row[name]), name


def test_column_types_and_names(config, stats):
    batch = run_blocks([WordTokens(config), FilterStatistics(config)], [TEXT])
    assert batch.schema.field("words").type == pa.list_(pa.string())
    assert batch.schema.field("stat_word_count").type == pa.int64()
    assert batch.schema.field("stat_dup_line_share").type == pa.float64()
    assert FilterStatistics(config).writes == statistic_columns(config)
    assert len(statistic_columns(config)) == 5 + 3 + 6 + 5 + 9


def test_disabled_sections_compute_nothing(config):
    only_quality = dataclasses.replace(config, filters=FiltersConfig(
        gopher_repetition=None, fineweb_quality=None, gopher_quality=GopherQualityConfig(stopwords=["ja"])))
    batch = run_blocks([WordTokens(only_quality), FilterStatistics(only_quality)], [TEXT])
    assert [c for c in batch.column_names if c.startswith("stat_")] == [
        "stat_token_count", "stat_word_count", "stat_mean_word_length", "stat_hash_token_ratio",
        "stat_ellipsis_token_ratio", "stat_bullet_line_share", "stat_ellipsis_line_share",
        "stat_alpha_token_share", "stat_stopword_count"]


def test_ngram_helpers_equal_datatrove_on_random_sequences():
    """Same counting, joining (with and without spaces) and tie-breaking as datatrove's helpers."""
    from datatrove.pipeline.filters.gopher_repetition_filter import find_all_duplicate, find_top_duplicate, get_n_grams

    rng = random.Random(5)
    vocabulary = ["a", "b", "ab", "ba", "c", "bc", "abc", "dd"]  # "ab"+"c" and "a"+"bc" collide when glued
    for _ in range(300):
        words = [rng.choice(vocabulary) for _ in range(rng.randint(0, 40))]
        for n in range(1, 11):
            grams = get_n_grams(words, n)
            assert _top_ngram_chars(words, n) == (find_top_duplicate(grams) if grams else 0)
            assert _dup_ngram_chars(words, n) == find_all_duplicate(words, n)


def test_c4_statistics(config):
    c4 = dataclasses.replace(config, filters=FiltersConfig(gopher_repetition=None, fineweb_quality=None,
                                                           gopher_quality=None, c4=C4Config()))
    text = ("Menu\nTämä rivi on hyvä. Toinen lause.\nLorem ipsum dolor sit amet.\n"
            "Tässä on {aaltosulje} keskellä.\nKolmas rivi on myös hyvä.")
    batch = run_blocks([WordTokens(c4), FilterStatistics(c4)], [text])
    assert batch["stat_c4_lorem_ipsum_line"].to_pylist() == [2]
    assert batch["stat_c4_curly_bracket_line"].to_pylist() == [3]
    assert batch["stat_c4_sentence_count"].to_pylist() == [3]  # 2 + 1 in the two kept lines


def test_unicode_words_tokenizer():
    text = "Hän sanoi: e-mail on \"hyvä\"... #1, 2,5 km/h -yhtiön kulku- ja @nimi https://t.co/x?y=1"
    assert unicode_words(text) == [
        "Hän", "sanoi", ":", "e-mail", "on", '"', "hyvä", '"', "...", "#", "1", ",", "2,5", "km/h", "-yhtiön",
        "kulku-", "ja", "@nimi", "https://t.co/x?y=1"]
