"""Filter statistics, computed once per document in stage 1 and stored as `stat_*` columns.

Each statistic is computed exactly as datatrove's `GopherRepetitionFilter`, `FineWebQualityFilter`,
`GopherQualityFilter` and `C4QualityFilter` compute the value they compare with a threshold (same line
splitting, same n-gram joining, same tie-breaking, same float divisions), so that stage 3, which only
compares these columns with the config's thresholds, keeps and drops the same documents as datatrove. A
ratio whose denominator is zero is NaN (no threshold applies to it; datatrove raises there).

Columns (the config decides which sections, and which n-gram sizes, are computed):

| column | what it measures |
|---|---|
| `stat_char_count` | characters in the text |
| `stat_dup_para_share` | paragraphs repeating an earlier one / paragraphs |
| `stat_dup_para_char_share` | characters of repeated paragraphs / characters |
| `stat_dup_line_share` | lines (split on runs of `\\n`) repeating an earlier one / lines |
| `stat_dup_line_char_share` | characters of repeated lines / characters |
| `stat_top_<n>gram_char_share` | characters of the most frequent word n-gram × its count / characters |
| `stat_dup_<n>gram_char_share` | characters of repeated word n-grams (non-overlapping) / characters |
| `stat_nonblank_line_count` | non-blank lines (split on `\\n`) |
| `stat_punct_line_share` | non-blank lines ending in terminal punctuation / non-blank lines |
| `stat_short_line_share` | non-blank lines of at most `short_line_max_chars` characters / non-blank lines |
| `stat_dup_nonblank_line_char_share` | characters of repeated non-blank lines / characters other than `\\n` |
| `stat_newline_token_ratio` | newlines / tokens |
| `stat_token_count` | word tokens |
| `stat_word_count` | tokens with a character that is not punctuation ("words") |
| `stat_mean_word_length` | mean characters per word |
| `stat_hash_token_ratio` | `#` characters / tokens |
| `stat_ellipsis_token_ratio` | `...` and `…` occurrences / tokens |
| `stat_bullet_line_share` | lines (`str.splitlines`) starting with `•` or `-` / lines |
| `stat_ellipsis_line_share` | lines ending in `...` or `…` / lines |
| `stat_alpha_token_share` | tokens with a letter / tokens |
| `stat_stopword_count` | distinct stopwords among the tokens |
| `stat_c4_lorem_ipsum_line`, `stat_c4_curly_bracket_line` | first line C4 would drop the document for, or -1 |
| `stat_c4_sentence_count` | sentences in the lines C4 keeps |
| `stat_precision_word_count` | distinct high-precision words among the tokens (`blocks/precision.py`) |
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from itertools import accumulate
from typing import Any, Callable

import pyarrow as pa

from curate.blocks.base import Block, set_column
from curate.blocks.words import WORDS
from curate.language_configs.filters import C4Config, FineWebQualityConfig, GopherQualityConfig, GopherRepetitionConfig
from curate.language_configs.schema import LanguageConfig

NAN = float("nan")
_PARAGRAPH_SPLIT = re.compile(r"\n{2,}")
_LINE_SPLIT = re.compile("\n+")

INT_STATISTICS = frozenset({
    "stat_char_count", "stat_nonblank_line_count", "stat_token_count", "stat_word_count", "stat_stopword_count",
    "stat_c4_lorem_ipsum_line", "stat_c4_curly_bracket_line", "stat_c4_sentence_count",
    "stat_precision_word_count",
})


def top_ngram_column(n: int) -> str:
    return f"stat_top_{n}gram_char_share"


def dup_ngram_column(n: int) -> str:
    return f"stat_dup_{n}gram_char_share"


@cache
def _punctuation_set() -> frozenset[str]:
    from datatrove.utils.text import PUNCTUATION_SET

    return frozenset(PUNCTUATION_SET)


@cache
def _terminal_punctuation() -> tuple[str, ...]:
    from datatrove.utils.text import TERMINAL_PUNCTUATION

    return tuple(TERMINAL_PUNCTUATION)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else NAN


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(repeated items, characters of repeated items): an item repeats when an equal one came before."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars


class _Ngrams:
    """Word n-grams joined by `separator`, as slices of one joined string: no list slicing or join per n-gram."""

    def __init__(self, words: list[str], separator: str) -> None:
        self.count = len(words)
        self.text = separator.join(words)
        step = len(separator)
        lengths = map(len, words) if not step else map(step.__add__, map(len, words))
        self.starts = list(accumulate(lengths, initial=0))  # where word i starts
        self.ends = self.starts if not step else [start - step for start in self.starts]  # where word i-1 ends

    def keys(self, n: int) -> list[str]:
        grams = self.count - n + 1
        if grams <= 0:
            return []
        return list(map(self.text.__getitem__, map(slice, self.starts[:grams], self.ends[n:])))


def _top_ngram_chars(words: list[str] | _Ngrams, n: int) -> int:
    """Characters of the most frequent n-gram (words joined by a space) × its count; ties go to the n-gram seen
    first (as `Counter.most_common(1)`); 0 without n-grams. Equals datatrove's `find_top_duplicate`."""
    keys = (words if isinstance(words, _Ngrams) else _Ngrams(words, " ")).keys(n)
    if not keys:
        return 0
    gram, count = Counter(keys).most_common(1)[0]
    return len(gram) * count


def _dup_ngram_chars(words: list[str] | _Ngrams, n: int) -> int:
    """Characters of n-grams (words joined without a separator) equal to an earlier one, skipping past each
    repeat so repeats do not overlap. Equals datatrove's `find_all_duplicate`."""
    keys = (words if isinstance(words, _Ngrams) else _Ngrams(words, "")).keys(n)
    if len(set(keys)) == len(keys):  # the common case: no n-gram occurs twice
        return 0
    repeated = {key for key, count in Counter(keys).items() if count > 1}
    seen: set[str] = set()
    chars = index = 0
    while index < len(keys):
        key = keys[index]
        if key in seen:
            chars += len(key)
            index += n
        else:
            if key in repeated:
                seen.add(key)  # an n-gram seen once in the whole text can never be a repeat: no need to keep it
            index += 1
    return chars


def gopher_repetition_statistics(text: str, words: list[str], settings: GopherRepetitionConfig) -> dict[str, Any]:
    """The values datatrove's `GopherRepetitionFilter` compares with its thresholds."""
    stats: dict[str, Any] = {"stat_char_count": len(text)}
    chars = len(text)
    paragraphs = _PARAGRAPH_SPLIT.split(text.strip())
    dup, dup_chars = _duplicates(paragraphs)
    stats["stat_dup_para_share"] = _ratio(dup, len(paragraphs))
    stats["stat_dup_para_char_share"] = _ratio(dup_chars, chars)
    lines = _LINE_SPLIT.split(text)
    dup, dup_chars = _duplicates(lines)
    stats["stat_dup_line_share"] = _ratio(dup, len(lines))
    stats["stat_dup_line_char_share"] = _ratio(dup_chars, chars)
    spaced, glued = _Ngrams(words, " "), _Ngrams(words, "")
    for n in settings.max_top_ngram_char_share:
        stats[top_ngram_column(n)] = _ratio(_top_ngram_chars(spaced, n), chars)
    for n in settings.max_dup_ngram_char_share:
        stats[dup_ngram_column(n)] = _ratio(_dup_ngram_chars(glued, n), chars)
    return stats


def fineweb_quality_statistics(text: str, words: list[str], settings: FineWebQualityConfig) -> dict[str, Any]:
    """The values datatrove's `FineWebQualityFilter` compares with its thresholds."""
    lines = [line for line in text.split("\n") if line.strip() != ""]
    endings = (tuple(settings.terminal_punctuation) if settings.terminal_punctuation is not None
               else _terminal_punctuation())
    count = len(lines)
    return {
        "stat_nonblank_line_count": count,
        "stat_punct_line_share": _ratio(sum(1 for line in lines if line.endswith(endings)), count),
        "stat_short_line_share": _ratio(sum(1 for line in lines if len(line) <= settings.short_line_max_chars),
                                        count),
        "stat_dup_nonblank_line_char_share": (
            _ratio(_duplicates(lines)[1], len(text) - text.count("\n")) if count else NAN),
        "stat_newline_token_ratio": _ratio(text.count("\n"), len(words)),
    }


def gopher_quality_statistics(text: str, words: list[str], settings: GopherQualityConfig,
                              stopwords: frozenset[str]) -> dict[str, Any]:
    """The values datatrove's `GopherQualityFilter` compares with its thresholds."""
    punctuation = _punctuation_set()
    word_lengths = [len(w) for w in words if not punctuation.issuperset(w)]
    tokens = len(words)
    lines = text.splitlines()
    return {
        "stat_token_count": tokens,
        "stat_word_count": len(word_lengths),
        # the integer sum is exact, so this equals numpy.mean of the lengths
        "stat_mean_word_length": _ratio(sum(word_lengths), len(word_lengths)),
        "stat_hash_token_ratio": _ratio(text.count("#"), tokens),
        "stat_ellipsis_token_ratio": _ratio(text.count("...") + text.count("…"), tokens),
        "stat_bullet_line_share": _ratio(
            sum(s.lstrip().startswith("•") or s.lstrip().startswith("-") for s in lines), len(lines)),
        "stat_ellipsis_line_share": _ratio(
            sum(s.rstrip().endswith("...") or s.rstrip().endswith("…") for s in lines), len(lines)),
        "stat_alpha_token_share": _ratio(sum(any(map(str.isalpha, w)) for w in words), tokens),
        "stat_stopword_count": len(stopwords.intersection(words)),
    }


_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_C4_END_PUNCTUATION = (".", "?", "!", '"', "'")
_C4_POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")


def c4_statistics(text: str, settings: C4Config, sentence_count) -> dict[str, Any]:
    """C4's line pass (datatrove's `C4QualityFilter` with `split_paragraph=True`): the first line that would drop
    the document for "lorem ipsum" or `{` (-1: none) and the sentences in the lines it keeps (0 when
    `min_sentence_count` is null: not counted)."""
    lorem = curly = -1
    sentences = 0
    for index, line in enumerate(text.splitlines()):
        line = line.strip()
        words = line.split()
        if settings.max_word_chars is not None and any(len(word) > settings.max_word_chars for word in words):
            continue
        if settings.remove_citations:
            line = _CITATION.sub("", line)
        if settings.require_terminal_punctuation and (
                not line.endswith(_C4_END_PUNCTUATION) or line.endswith("...")):
            continue
        if settings.min_words_per_line is not None and len(words) < settings.min_words_per_line:
            continue
        lowered = line.lower()
        if settings.drop_lorem_ipsum and "lorem ipsum" in lowered:
            lorem = index if lorem < 0 else lorem
            continue  # C4 drops the document at its first such line; the line is never kept
        if settings.drop_javascript_lines and "javascript" in lowered:
            continue
        if settings.drop_curly_bracket and "{" in line:
            curly = index if curly < 0 else curly
            continue
        if settings.drop_policy_lines and any(p in lowered for p in _C4_POLICY):
            continue
        if settings.min_sentence_count is not None:
            sentences += sentence_count(line)
    return {"stat_c4_lorem_ipsum_line": lorem, "stat_c4_curly_bracket_line": curly,
            "stat_c4_sentence_count": sentences}


def statistic_columns(config: LanguageConfig) -> tuple[str, ...]:
    """The `stat_*` columns `FilterStatistics` writes for this config, in order."""
    filters = config.filters
    columns: list[str] = []
    if filters.gopher_repetition is not None:
        columns += ["stat_char_count", "stat_dup_para_share", "stat_dup_para_char_share", "stat_dup_line_share",
                    "stat_dup_line_char_share"]
        columns += [top_ngram_column(n) for n in filters.gopher_repetition.max_top_ngram_char_share]
        columns += [dup_ngram_column(n) for n in filters.gopher_repetition.max_dup_ngram_char_share]
    if filters.fineweb_quality is not None:
        columns += ["stat_nonblank_line_count", "stat_punct_line_share", "stat_short_line_share",
                    "stat_dup_nonblank_line_char_share", "stat_newline_token_ratio"]
    if filters.gopher_quality is not None:
        columns += ["stat_token_count", "stat_word_count", "stat_mean_word_length", "stat_hash_token_ratio",
                    "stat_ellipsis_token_ratio", "stat_bullet_line_share", "stat_ellipsis_line_share",
                    "stat_alpha_token_share", "stat_stopword_count"]
    if filters.c4 is not None:
        columns += ["stat_c4_lorem_ipsum_line", "stat_c4_curly_bracket_line", "stat_c4_sentence_count"]
    return tuple(columns)


def statistics_settings(config: LanguageConfig) -> dict[str, Any]:
    """The settings that change a stored statistic (the keys `language_configs/filters.py` marks *stage 1*,
    the sections switched on, the tokenizer), never a threshold: what stage 1's fingerprint covers."""
    from curate.blocks.words import tokenizer_key

    filters = config.filters
    settings: dict[str, Any] = {"tokenizer": tokenizer_key(config)}
    if filters.gopher_repetition is not None:
        repetition = filters.gopher_repetition
        settings["gopher_repetition"] = {"top_ngrams": sorted(repetition.max_top_ngram_char_share),
                                         "dup_ngrams": sorted(repetition.max_dup_ngram_char_share)}
    if filters.fineweb_quality is not None:
        fineweb = filters.fineweb_quality
        settings["fineweb_quality"] = {"terminal_punctuation": fineweb.terminal_punctuation,
                                       "short_line_max_chars": fineweb.short_line_max_chars}
    if filters.gopher_quality is not None:
        settings["gopher_quality"] = {"stopwords": sorted(filters.gopher_quality.stopwords)}
    if filters.c4 is not None:
        c4 = filters.c4
        settings["c4"] = {name: getattr(c4, name) for name in (
            "drop_lorem_ipsum", "drop_curly_bracket", "min_words_per_line", "max_word_chars",
            "require_terminal_punctuation", "drop_javascript_lines", "drop_policy_lines", "remove_citations")}
        settings["c4"]["sentences"] = c4.min_sentence_count is not None
    return settings


@cache
def _sentence_counter(key: str):
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    from curate.blocks.words import FAST_TOKENIZER

    if key == FAST_TOKENIZER:
        from datatrove.utils.word_tokenizers import WhitespaceTokenizer

        tokenizer = WhitespaceTokenizer()
    else:
        tokenizer = load_word_tokenizer(key)
    # datatrove's split_into_sentences returns one part even when the splitter finds no sentence
    return lambda line: max(1, len(tokenizer.span_tokenize(line)))


def statistics_function(config: LanguageConfig) -> Callable[[str, list[str]], dict[str, Any]]:
    """(text, words) → every enabled section's statistics of one document (the `statistic_columns(config)`)."""
    filters = config.filters
    parts: list[Callable[[str, list[str]], dict[str, Any]]] = []
    repetition, fineweb, quality, c4 = (filters.gopher_repetition, filters.fineweb_quality,
                                        filters.gopher_quality, filters.c4)
    if repetition is not None:
        parts.append(lambda text, words: gopher_repetition_statistics(text, words, repetition))
    if fineweb is not None:
        parts.append(lambda text, words: fineweb_quality_statistics(text, words, fineweb))
    if quality is not None:
        stopwords = frozenset(quality.stopwords)
        parts.append(lambda text, words: gopher_quality_statistics(text, words, quality, stopwords))
    if c4 is not None:
        from curate.blocks.words import tokenizer_key

        counter = _sentence_counter(tokenizer_key(config))
        parts.append(lambda text, words: c4_statistics(text, c4, counter))

    def compute(text: str, words: list[str]) -> dict[str, Any]:
        stats: dict[str, Any] = {}
        for part in parts:
            stats.update(part(text, words))
        return stats

    return compute


@dataclass
class FilterStatistics(Block):
    """Adds one `stat_*` column per filter statistic (see the module docstring) from `text` and `words`."""

    config: LanguageConfig
    name = "filter_statistics"

    reads = ("text", WORDS)

    @property
    def writes(self) -> tuple[str, ...]:  # type: ignore[override]
        return statistic_columns(self.config)

    def fingerprint(self) -> object:
        return {"block": self.name, "statistics": statistics_settings(self.config)}

    def apply(self, batch: pa.Table) -> pa.Table:
        columns = statistic_columns(self.config)
        compute = statistics_function(self.config)
        rows = [compute(text or "", words or [])
                for text, words in zip(batch["text"].to_pylist(), batch[WORDS].to_pylist())]
        for column in columns:
            kind = pa.int64() if column in INT_STATISTICS else pa.float64()
            batch = set_column(batch, column, pa.array([row[column] for row in rows], type=kind))
        return batch
