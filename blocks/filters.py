"""Stage-3 heuristic filters: compare the `stat_*` columns stored in stage 1 with the config's thresholds.

No text is read and nothing is re-tokenized. A document failing a rule gets `drop_reason =
"<filter>.<rule>"`; rules are checked in datatrove's order and the first failing rule is the reason, so the
reasons match datatrove's (`dup_line_frac` → `gopher_repetition.dup_line_share`, …). Every rule compares
one statistic column: `rule_statistic(reason)` names it, `RULE_TABLE` lists them all.

A `max_*` threshold drops documents whose statistic is above it, a `min_*` threshold those below it; NaN
statistics (an empty denominator) pass every threshold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa

from curate.blocks.base import Block, mark_dropped
from curate.blocks.statistics import dup_ngram_column, top_ngram_column
from curate.language_configs.filters import C4Config, FineWebQualityConfig, GopherQualityConfig, GopherRepetitionConfig

Bound = Literal["max", "min"]


@dataclass(frozen=True)
class Rule:
    """One check: `statistic` compared with the config key `key` of section `filter` (`bound` says which way)."""

    filter: str
    name: str
    statistic: str
    bound: Bound
    key: str | None
    """The config key holding the threshold; None for rules with a `fixed` threshold."""
    fixed: float | None = None
    """The threshold of rules that have no config key (`empty`: fewer than 1; C4's first-line rules: above -1)."""

    @property
    def reason(self) -> str:
        return f"{self.filter}.{self.name}"


def _rule(filter_name: str, statistic: str, bound: Bound, key: str | None, name: str | None = None,
          fixed: float | None = None) -> Rule:
    return Rule(filter_name, name or statistic.removeprefix("stat_"), statistic, bound, key, fixed)


_GR, _FW, _GQ, _C4, _PR = "gopher_repetition", "fineweb_quality", "gopher_quality", "c4", "precision"

# Every fixed-name rule, in the order its filter checks them (the n-gram rules are generated per size).
RULE_TABLE: tuple[Rule, ...] = (
    _rule(_GR, "stat_char_count", "min", None, "empty", fixed=1),
    _rule(_GR, "stat_dup_para_share", "max", "max_dup_para_share"),
    _rule(_GR, "stat_dup_para_char_share", "max", "max_dup_para_char_share"),
    _rule(_GR, "stat_dup_line_share", "max", "max_dup_line_share"),
    _rule(_GR, "stat_dup_line_char_share", "max", "max_dup_line_char_share"),
    _rule(_FW, "stat_nonblank_line_count", "min", None, "empty", fixed=1),
    _rule(_FW, "stat_punct_line_share", "min", "min_punct_line_share"),
    _rule(_FW, "stat_short_line_share", "max", "max_short_line_share"),
    _rule(_FW, "stat_dup_nonblank_line_char_share", "max", "max_dup_line_char_share", "dup_line_char_share"),
    _rule(_FW, "stat_newline_token_ratio", "max", "max_newline_token_ratio"),
    _rule(_GQ, "stat_word_count", "min", "min_word_count", "word_count_low"),
    _rule(_GQ, "stat_word_count", "max", "max_word_count", "word_count_high"),
    _rule(_GQ, "stat_mean_word_length", "min", "min_mean_word_length", "mean_word_length_low"),
    _rule(_GQ, "stat_mean_word_length", "max", "max_mean_word_length", "mean_word_length_high"),
    _rule(_GQ, "stat_hash_token_ratio", "max", "max_hash_token_ratio"),
    _rule(_GQ, "stat_ellipsis_token_ratio", "max", "max_ellipsis_token_ratio"),
    _rule(_GQ, "stat_bullet_line_share", "max", "max_bullet_line_share"),
    _rule(_GQ, "stat_ellipsis_line_share", "max", "max_ellipsis_line_share"),
    _rule(_GQ, "stat_alpha_token_share", "min", "min_alpha_token_share"),
    _rule(_GQ, "stat_stopword_count", "min", "min_stopword_count"),
    _rule(_C4, "stat_c4_lorem_ipsum_line", "max", None, "lorem_ipsum", fixed=-1),
    _rule(_C4, "stat_c4_curly_bracket_line", "max", None, "curly_bracket", fixed=-1),
    _rule(_C4, "stat_c4_sentence_count", "min", "min_sentence_count", "sentence_count"),
    _rule(_PR, "stat_precision_word_count", "min", "min_words", "no_language_evidence"),
)
_BY_REASON = {rule.reason: rule for rule in RULE_TABLE}
_NGRAM_RULE = re.compile(r"gopher_repetition\.(top|dup)_(\d+)gram_char_share")


def _ngram_rule(kind: str, n: int) -> Rule:
    column = top_ngram_column(n) if kind == "top" else dup_ngram_column(n)
    key = "max_top_ngram_char_share" if kind == "top" else "max_dup_ngram_char_share"
    return _rule(_GR, column, "max", key)


def rule_for(reason: str) -> Rule:
    """The rule behind a `drop_reason` such as `gopher_repetition.dup_line_share`; KeyError if none."""
    if reason in _BY_REASON:
        return _BY_REASON[reason]
    match = _NGRAM_RULE.fullmatch(reason)
    if match:
        return _ngram_rule(match[1], int(match[2]))
    raise KeyError(f"no filter rule {reason!r}; rules: {', '.join(_BY_REASON)}, gopher_repetition.top_<n>gram_"
                   "char_share, gopher_repetition.dup_<n>gram_char_share")


def rule_statistic(reason: str) -> str:
    """The `stat_*` column a drop reason's rule compares (`gopher_repetition.dup_line_share` →
    `stat_dup_line_share`)."""
    return rule_for(reason).statistic


def rule_threshold(reason: str, config) -> tuple[Bound, float | None]:
    """(`max` or `min`, the threshold) a rule applies under a `LanguageConfig`; None when it is switched off."""
    rule = rule_for(reason)
    section = getattr(config.filters, rule.filter)
    if section is None:
        return rule.bound, None
    if rule.key is None:
        return rule.bound, rule.fixed
    value = getattr(section, rule.key)
    if isinstance(value, dict):
        value = value.get(int(re.search(r"_(\d+)gram", rule.name)[1]))  # type: ignore[index]
    return rule.bound, value


def _values(batch: pa.Table, column: str) -> np.ndarray:
    return np.asarray(batch[column].to_numpy(), dtype=np.float64)


def _drop_mask(values: np.ndarray, bound: Bound, threshold: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return values > threshold if bound == "max" else values < threshold


@dataclass
class _ThresholdFilter(Block):
    """Shared logic: apply `(rule, threshold)` pairs in order, skipping switched-off ones."""

    def checks(self) -> list[tuple[Rule, float]]:
        raise NotImplementedError

    @property
    def reads(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(dict.fromkeys(rule.statistic for rule, _ in self.checks()))

    writes = ("drop_reason",)

    def apply(self, batch: pa.Table) -> pa.Table:
        for rule, threshold in self.checks():
            batch = mark_dropped(batch, self.mask(batch, rule, threshold), rule.reason)
        return batch

    def mask(self, batch: pa.Table, rule: Rule, threshold: float) -> np.ndarray:
        return _drop_mask(_values(batch, rule.statistic), rule.bound, threshold)


def _section_checks(filter_name: str, settings: object) -> list[tuple[Rule, float]]:
    checks = []
    for rule in RULE_TABLE:
        if rule.filter != filter_name:
            continue
        threshold = rule.fixed if rule.key is None else getattr(settings, rule.key)
        if threshold is not None:
            checks.append((rule, threshold))
    return checks


@dataclass
class GopherRepetitionFilter(_ThresholdFilter):
    """Marks documents with repeated paragraphs, lines or word n-grams (`gopher_repetition.<rule>`)."""

    settings: GopherRepetitionConfig
    name = _GR

    def checks(self) -> list[tuple[Rule, float]]:
        checks = _section_checks(_GR, self.settings)
        for n, threshold in self.settings.max_top_ngram_char_share.items():
            if threshold is not None:
                checks.append((_ngram_rule("top", n), threshold))
        for n, threshold in self.settings.max_dup_ngram_char_share.items():
            if threshold is not None:
                checks.append((_ngram_rule("dup", n), threshold))
        return checks


@dataclass
class FineWebQualityFilter(_ThresholdFilter):
    """Marks documents with few punctuated lines, many short or repeated lines, or many newlines per token
    (`fineweb_quality.<rule>`)."""

    settings: FineWebQualityConfig
    name = _FW

    def checks(self) -> list[tuple[Rule, float]]:
        return _section_checks(_FW, self.settings)

    def mask(self, batch: pa.Table, rule: Rule, threshold: float) -> np.ndarray:
        mask = super().mask(batch, rule, threshold)
        if rule.key == "min_punct_line_share" and self.settings.punct_free_passes:
            mask &= _values(batch, rule.statistic) != 0
        return mask


@dataclass
class GopherQualityFilter(_ThresholdFilter):
    """Marks documents outside Gopher's bounds on words, word length, symbols, bullets, letters and stopwords
    (`gopher_quality.<rule>`)."""

    settings: GopherQualityConfig
    name = _GQ

    def checks(self) -> list[tuple[Rule, float]]:
        return _section_checks(_GQ, self.settings)


@dataclass
class C4Filter(_ThresholdFilter):
    """Marks documents C4 drops: a kept line with "lorem ipsum" or `{`, or too few sentences (`c4.<rule>`)."""

    settings: C4Config
    name = _C4

    def checks(self) -> list[tuple[Rule, float]]:
        return _section_checks(_C4, self.settings)

    def mask(self, batch: pa.Table, rule: Rule, threshold: float) -> np.ndarray:
        if rule.name == "sentence_count":
            return super().mask(batch, rule, threshold)
        lorem = _values(batch, "stat_c4_lorem_ipsum_line")
        curly = _values(batch, "stat_c4_curly_bracket_line")
        if rule.name == "lorem_ipsum":  # the first offending line decides, as in C4's single pass
            return (lorem >= 0) & ((curly < 0) | (lorem < curly))
        return (curly >= 0) & ((lorem < 0) | (curly < lorem))


def stage3_threshold_filters(filters) -> list[Block]:
    """The configured heuristic filters of a `FiltersConfig`, in FineWeb2's order."""
    blocks: list[Block] = []
    if filters.gopher_repetition is not None:
        blocks.append(GopherRepetitionFilter(filters.gopher_repetition))
    if filters.fineweb_quality is not None:
        blocks.append(FineWebQualityFilter(filters.fineweb_quality))
    if filters.gopher_quality is not None:
        blocks.append(GopherQualityFilter(filters.gopher_quality))
    if filters.c4 is not None:
        blocks.append(C4Filter(filters.c4))
    return blocks
