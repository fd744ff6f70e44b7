"""Stage-3 rules: thresholds on stored statistics only, null switches a check off, the first failing rule wins,
and every drop reason names the statistic column it compared."""

from __future__ import annotations

import dataclasses
import math

import pyarrow as pa
import pytest
from filters_helpers import from_datatrove_reason

from curate.blocks.filters import (
    RULE_TABLE,
    C4Filter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    rule_statistic,
    rule_threshold,
)
from curate.blocks.quality import stage1_blocks, stage3_filter_blocks
from curate.language_configs.filters import C4Config, FineWebQualityConfig, GopherQualityConfig, GopherRepetitionConfig

NAN = math.nan


def reasons(block, **columns) -> list:
    batch = block(pa.table({k: pa.array(v, pa.float64()) for k, v in columns.items()}))
    return batch["drop_reason"].to_pylist()


def quality_columns(**overrides) -> dict:
    base = {"stat_word_count": 100.0, "stat_mean_word_length": 5.0, "stat_hash_token_ratio": 0.0,
            "stat_ellipsis_token_ratio": 0.0, "stat_bullet_line_share": 0.0, "stat_ellipsis_line_share": 0.0,
            "stat_alpha_token_share": 0.9, "stat_stopword_count": 3.0}
    return {k: [overrides.get(k, v)] for k, v in base.items()}


def test_rule_statistic_names_the_compared_column():
    assert rule_statistic("gopher_repetition.dup_line_share") == "stat_dup_line_share"
    assert rule_statistic("gopher_repetition.top_3gram_char_share") == "stat_top_3gram_char_share"
    assert rule_statistic("gopher_repetition.dup_10gram_char_share") == "stat_dup_10gram_char_share"
    assert rule_statistic("fineweb_quality.dup_line_char_share") == "stat_dup_nonblank_line_char_share"
    assert rule_statistic("gopher_quality.word_count_low") == "stat_word_count"
    assert rule_statistic("precision.no_language_evidence") == "stat_precision_word_count"
    with pytest.raises(KeyError, match="no filter rule"):
        rule_statistic("gopher_quality.nonsense")
    assert len({r.reason for r in RULE_TABLE}) == len(RULE_TABLE)


def test_rule_threshold_reads_the_config(fin_config):
    assert rule_threshold("gopher_repetition.dup_line_share", fin_config) == ("max", 0.293)
    assert rule_threshold("gopher_repetition.top_2gram_char_share", fin_config) == ("max", 0.253)
    assert rule_threshold("gopher_repetition.dup_para_share", fin_config) == ("max", None)  # off in FineWeb2
    assert rule_threshold("fineweb_quality.punct_line_share", fin_config) == ("min", 0.114)
    assert rule_threshold("gopher_quality.alpha_token_share", fin_config) == ("min", 0.755)
    assert rule_threshold("gopher_repetition.empty", fin_config) == ("min", 1)


def test_every_shipped_rule_reads_a_stage1_column(fin_config):
    columns = {c for block in stage1_blocks(fin_config) for c in block.writes} - {"words"}  # `words` is transient
    for block in stage3_filter_blocks(fin_config):
        assert set(block.reads) <= columns, block.name
        assert "text" not in block.reads


def test_bounds_are_strict_and_nan_passes():
    block = GopherQualityFilter(GopherQualityConfig(stopwords=["ja"]))
    assert reasons(block, **quality_columns(stat_word_count=50.0)) == [None]  # 50 is not below 50
    assert reasons(block, **quality_columns(stat_word_count=49.0)) == ["gopher_quality.word_count_low"]
    assert reasons(block, **quality_columns(stat_word_count=100_001.0)) == ["gopher_quality.word_count_high"]
    assert reasons(block, **quality_columns(stat_mean_word_length=10.0)) == [None]
    assert reasons(block, **quality_columns(stat_mean_word_length=10.5)) == ["gopher_quality.mean_word_length_high"]
    assert reasons(block, **quality_columns(stat_mean_word_length=NAN)) == [None]


def test_null_switches_a_check_off_and_zero_does_not():
    off = GopherQualityFilter(GopherQualityConfig(stopwords=["ja"], max_mean_word_length=None,
                                                  min_alpha_token_share=None))
    assert reasons(off, **quality_columns(stat_mean_word_length=40.0, stat_alpha_token_share=0.1)) == [None]
    strict = GopherRepetitionFilter(GopherRepetitionConfig(max_dup_line_share=0.0, max_top_ngram_char_share={},
                                                           max_dup_ngram_char_share={}))
    columns = {"stat_char_count": [10.0, 10.0], "stat_dup_line_share": [0.0, 0.01]}
    assert reasons(strict, **columns) == [None, "gopher_repetition.dup_line_share"]
    assert strict.reads == ("stat_char_count", "stat_dup_line_share")


def test_first_failing_rule_is_the_reason_in_datatrove_order():
    block = GopherQualityFilter(GopherQualityConfig(stopwords=["ja"]))
    everything_wrong = quality_columns(stat_word_count=10.0, stat_hash_token_ratio=0.5, stat_stopword_count=0.0)
    assert reasons(block, **everything_wrong) == ["gopher_quality.word_count_low"]
    batch = pa.table({"drop_reason": ["earlier.rule"], **{k: pa.array(v) for k, v in everything_wrong.items()}})
    assert block(batch)["drop_reason"].to_pylist() == ["earlier.rule"]  # an earlier block's reason stays


def test_punct_free_passes():
    columns = {"stat_nonblank_line_count": [3.0, 3.0, 3.0], "stat_punct_line_share": [0.0, 0.05, 0.5],
               "stat_short_line_share": [0.0] * 3, "stat_dup_nonblank_line_char_share": [0.0] * 3,
               "stat_newline_token_ratio": [0.0] * 3}
    default = FineWebQualityFilter(FineWebQualityConfig())
    assert reasons(default, **columns) == ["fineweb_quality.punct_line_share"] * 2 + [None]
    lenient = FineWebQualityFilter(FineWebQualityConfig(punct_free_passes=True))
    assert reasons(lenient, **columns) == [None, "fineweb_quality.punct_line_share", None]


def test_c4_first_offending_line_decides():
    block = C4Filter(C4Config())
    columns = {"stat_c4_lorem_ipsum_line": [2.0, 5.0, -1.0, -1.0], "stat_c4_curly_bracket_line": [3.0, 1.0, -1.0, -1.0],
               "stat_c4_sentence_count": [9.0, 9.0, 9.0, 4.0]}
    assert reasons(block, **columns) == ["c4.lorem_ipsum", "c4.curly_bracket", None, "c4.sentence_count"]


def test_datatrove_reason_names():
    assert from_datatrove_reason("GopherRepetitionFilter", "top_2_gram") == "gopher_repetition.top_2gram_char_share"
    assert from_datatrove_reason("FineWebQualityFilter", "list_ratio") == "fineweb_quality.newline_token_ratio"
    assert (from_datatrove_reason("GopherQualityFilter", "gopher_below_alpha_threshold")
            == "gopher_quality.alpha_token_share")


def test_blocks_pickle_small(fin_config):
    import pickle

    for block in stage3_filter_blocks(fin_config):
        assert len(pickle.dumps(block)) < 4096
    assert dataclasses.is_dataclass(stage3_filter_blocks(fin_config)[0])
