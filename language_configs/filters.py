"""The `filters` and `formatters` sections (heuristic quality filters and text fix-ups).

Every threshold says which way it points (`max_…` drops documents above it, `min_…` drops documents below
it) and what it measures; `null` switches a check off (never `0`, `999` or `-1`), and `null` for a whole
section switches the filter off. The statistics behind the thresholds are computed once in stage 1
(`blocks/statistics.py`, one `stat_<name>` column each) and compared in stage 3 (`blocks/filters.py`): a
dropped document gets `drop_reason = "<filter>.<rule>"`, where the rule is the statistic's name (with
`_low` / `_high` for the two-sided word count and mean word length).

Keys marked *stage 1* change what a statistic measures, so changing them needs stage 1 to run again; every
other key is a threshold that stage 3 applies to stored statistics.

Defaults are FineWeb2's fixed pipeline settings and, where FineWeb2 tunes a value per language, datatrove's
defaults (the Gopher / FineWeb English figures); the shipped configs set the per-language values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from curate.language_configs.validate import ConfigError

DEFAULT_TOP_NGRAMS = {2: 0.2, 3: 0.18, 4: 0.16}
DEFAULT_DUP_NGRAMS = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


def _check_shares(obj: object, section: str, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and not 0.0 <= value <= 1.0:
            raise ConfigError(f"filters.{section}.{name}: a share between 0 and 1 (or null), got {value}")


def _check_non_negative(obj: object, section: str, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and value < 0:
            raise ConfigError(f"filters.{section}.{name}: must not be negative (null switches it off), got {value}")


def _check_ngrams(mapping: dict[int, float | None], where: str) -> None:
    """n-gram shares may exceed 1 (FineWeb2 has such values): overlapping top n-grams can cover more characters
    than the text has, so they are compared as they are, as datatrove does; 0 drops any repeated n-gram."""
    for n, value in mapping.items():
        if n < 1:
            raise ConfigError(f"{where}: n-gram sizes are positive integers, got {n}")
        if value is not None and value < 0:
            raise ConfigError(f"{where}.{n}: must not be negative (null switches it off), got {value}")


@dataclass(frozen=True)
class GopherRepetitionConfig:
    """Gopher's repetition checks (Rae et al. 2021, table A1), as datatrove's `GopherRepetitionFilter`.

    Lines are the pieces of the text between runs of newlines; paragraphs are the pieces of the stripped text
    between blank lines; words are the config's word tokens. A "share" is a fraction in [0, 1].
    """

    max_dup_para_share: float | None = None
    """Most paragraphs that repeat an earlier paragraph, as a share of paragraphs (FineWeb2: off)."""
    max_dup_para_char_share: float | None = None
    """Most characters in repeated paragraphs, as a share of the text's characters (FineWeb2: off)."""
    max_dup_line_share: float | None = 0.3
    """Most lines that repeat an earlier line, as a share of lines (FineWeb2 `dup_line_frac`)."""
    max_dup_line_char_share: float | None = None
    """Most characters in repeated lines, as a share of the text's characters (FineWeb2: off; FineWeb quality's
    `max_dup_line_char_share` is the check FineWeb2 uses)."""
    max_top_ngram_char_share: dict[int, float | None] = field(default_factory=lambda: dict(DEFAULT_TOP_NGRAMS))
    """n → most characters covered by the most frequent word n-gram (its length × its count), as a share of the
    text's characters (FineWeb2 `top_n_grams`). Overlapping n-grams can cover more than the text, so a value
    above 1 is legal and still drops the most repetitive texts; 0 drops any repeated n-gram. The sizes n are
    *stage 1*."""
    max_dup_ngram_char_share: dict[int, float | None] = field(default_factory=lambda: dict(DEFAULT_DUP_NGRAMS))
    """n → most characters in word n-grams that repeat an earlier n-gram (non-overlapping), as a share of the
    text's characters (FineWeb2 `dup_n_grams`). 0 drops any repeated n-gram; the sizes n are *stage 1*."""

    def __post_init__(self) -> None:
        _check_shares(self, "gopher_repetition", ("max_dup_para_share", "max_dup_para_char_share",
                                                  "max_dup_line_share", "max_dup_line_char_share"))
        _check_ngrams(self.max_top_ngram_char_share, "filters.gopher_repetition.max_top_ngram_char_share")
        _check_ngrams(self.max_dup_ngram_char_share, "filters.gopher_repetition.max_dup_ngram_char_share")


@dataclass(frozen=True)
class FineWebQualityConfig:
    """FineWeb's line-level checks, as datatrove's `FineWebQualityFilter`. Lines are the non-blank lines of the
    text split on `\\n`."""

    min_punct_line_share: float | None = 0.12
    """Fewest lines ending in terminal punctuation, as a share of lines (FineWeb2 `line_punct_thr`)."""
    punct_free_passes: bool = False
    """Keep documents where no line ends in punctuation despite `min_punct_line_share` (datatrove's
    `line_punct_exclude_zero`)."""
    terminal_punctuation: list[str] | None = None
    """*Stage 1*. Line endings that count as terminal punctuation; null = datatrove's `TERMINAL_PUNCTUATION`
    (about 160 sentence-final marks of every script)."""
    max_short_line_share: float | None = None
    """Most lines of at most `short_line_max_chars` characters, as a share of lines (FineWeb2: off; FineWeb
    English: 0.67)."""
    short_line_max_chars: int = 30
    """*Stage 1*. A line of at most this many characters is short."""
    max_dup_line_char_share: float | None = 0.1
    """Most characters in lines that repeat an earlier line, as a share of the text's characters without
    newlines (FineWeb2: 0.1 for every language; FineWeb English: 0.01)."""
    max_newline_token_ratio: float | None = 0.3
    """Most newlines per word token (FineWeb2 `new_line_ratio`): high for lists and menus."""

    def __post_init__(self) -> None:
        _check_shares(self, "fineweb_quality", ("min_punct_line_share", "max_short_line_share",
                                                "max_dup_line_char_share"))
        _check_non_negative(self, "fineweb_quality", ("max_newline_token_ratio", "short_line_max_chars"))
        if self.terminal_punctuation is not None and not all(self.terminal_punctuation):
            raise ConfigError("filters.fineweb_quality.terminal_punctuation: empty strings are not punctuation")


@dataclass(frozen=True)
class GopherQualityConfig:
    """Gopher's quality checks (Rae et al. 2021), as datatrove's `GopherQualityFilter`.

    Tokens are the config's word tokens; words are the tokens with at least one character that is not
    punctuation (datatrove's `PUNCTUATION_SET`). Lines are `str.splitlines()` of the text.
    """

    min_word_count: int | None = 50
    """Fewest words (rule `word_count_low`)."""
    max_word_count: int | None = 100_000
    """Most words (rule `word_count_high`)."""
    min_mean_word_length: float | None = 3
    """Shortest mean word length in characters (FineWeb2 `min_avg_word_length`; rule `mean_word_length_low`)."""
    max_mean_word_length: float | None = 10
    """Longest mean word length in characters (FineWeb2 `max_avg_word_length`; rule `mean_word_length_high`)."""
    max_hash_token_ratio: float | None = 0.1
    """Most `#` characters per token (datatrove's `max_symbol_word_ratio`)."""
    max_ellipsis_token_ratio: float | None = 0.1
    """Most ellipses (`...` or `…`) per token (datatrove's `max_symbol_word_ratio`)."""
    max_bullet_line_share: float | None = 0.9
    """Most lines starting with `•` or `-`, as a share of lines."""
    max_ellipsis_line_share: float | None = 0.3
    """Most lines ending in `...` or `…`, as a share of lines."""
    min_alpha_token_share: float | None = 0.8
    """Fewest tokens with at least one letter, as a share of tokens (FineWeb2's misnamed
    `max_non_alpha_words_ratio`)."""
    min_stopword_count: int | None = None
    """Fewest distinct `stopwords` among the tokens (case-sensitive, as datatrove). FineWeb2: 2; off by default
    because the stopwords are the language's own (needs `stopwords`)."""
    stopwords: list[str] = field(default_factory=list)
    """*Stage 1*. The language's stopwords (FineWeb2 `stopwords`)."""

    def __post_init__(self) -> None:
        _check_shares(self, "gopher_quality", ("max_bullet_line_share", "max_ellipsis_line_share",
                                               "min_alpha_token_share"))
        _check_non_negative(self, "gopher_quality", (
            "min_word_count", "max_word_count", "min_mean_word_length", "max_mean_word_length",
            "max_hash_token_ratio", "max_ellipsis_token_ratio", "min_stopword_count"))
        if self.min_stopword_count and not self.stopwords:
            raise ConfigError(
                f"filters.gopher_quality.stopwords is empty but min_stopword_count is {self.min_stopword_count}: "
                "list the language's stopwords or set min_stopword_count: null"
            )


@dataclass(frozen=True)
class C4Config:
    """C4's document-level checks (Raffel et al. 2020), as datatrove's `C4QualityFilter` decides them. The
    line removal C4 also does is not applied: filters here never edit text. FineWeb2 does not use C4."""

    min_sentence_count: int | None = 5
    """Fewest sentences (datatrove's sentence splitter for the language, per line) in the lines C4 keeps
    (switching it on from null needs stage 1 again: sentences are only counted when it is set)."""
    drop_lorem_ipsum: bool = True
    """*Stage 1*. Drop documents with a line C4 would keep that contains "lorem ipsum"."""
    drop_curly_bracket: bool = True
    """*Stage 1*. Drop documents with a line C4 would keep that contains `{`."""
    min_words_per_line: int | None = 3
    """*Stage 1*. C4 keeps only lines with at least this many whitespace-separated words."""
    max_word_chars: int | None = 1000
    """*Stage 1*. C4 drops lines with a word longer than this."""
    require_terminal_punctuation: bool = True
    """*Stage 1*. C4 keeps only lines ending in `. ? ! " '` (and not in `...`)."""
    drop_javascript_lines: bool = True
    """*Stage 1*. C4 drops lines mentioning "javascript"."""
    drop_policy_lines: bool = True
    """*Stage 1*. C4 drops lines mentioning cookies, terms of use or privacy policies."""
    remove_citations: bool = True
    """*Stage 1*. Wikipedia-style citations (`[1]`, `[edit]`) are removed before the checks."""

    def __post_init__(self) -> None:
        _check_non_negative(self, "c4", ("min_sentence_count", "min_words_per_line", "max_word_chars"))


@dataclass(frozen=True)
class PrecisionConfig:
    """FineWeb2's precision filter (June 2025) for languages whose LID output holds related languages: keep a
    document if its URL points to the language or it contains a word of the language's high-precision list.

    Relative paths are looked up beside the config files (`$CURATE_LANGUAGE_CONFIGS`, then the shipped ones),
    then from the working directory.
    """

    word_list: str
    """*Stage 1*. File of high-precision words, one a line (words frequent in the language and rare in the
    languages LID confuses it with)."""
    url_whitelist: str | None = None
    """File of URL markers, one a line: `.fi` is a country-code top-level domain (the host ends with it), any
    other entry a word looked for in the URL lowercased with everything but letters, digits, `/` and `.`
    removed (language or place names). null: only the language code and the word list count."""
    url_language_codes: list[str] = field(default_factory=list)
    """Language codes that mark the language in a URL as a token of their own: a host label (`fi.example.com`),
    a path segment (`/fi/`, `/FI-fi/`) or a language parameter (`lang=fi`); `/film-reviews` is no evidence."""
    min_words: int = 1
    """Fewest distinct high-precision words for the text to count as evidence."""
    lowercase: bool = True
    """*Stage 1*. Compare lowercased tokens (and lowercase the list)."""

    def __post_init__(self) -> None:
        if self.min_words < 1:
            raise ConfigError(f"filters.precision.min_words: at least 1, got {self.min_words}")


@dataclass(frozen=True)
class FiltersConfig:
    """Heuristic filters applied in stage 3 to statistics computed once in stage 1, in FineWeb2's order:
    Gopher repetition, FineWeb quality, Gopher quality, then C4 and the precision filter. `null` switches a
    filter off."""

    gopher_repetition: GopherRepetitionConfig | None = field(default_factory=GopherRepetitionConfig)
    """Repeated lines, paragraphs and word n-grams."""
    fineweb_quality: FineWebQualityConfig | None = field(default_factory=FineWebQualityConfig)
    """Lines without punctuation, short lines, duplicated line characters, newlines per word."""
    gopher_quality: GopherQualityConfig | None = field(default_factory=GopherQualityConfig)
    """Word count, word length, symbols, bullets, letters, stopwords."""
    c4: C4Config | None = None
    """C4's document-level checks (off in FineWeb2)."""
    precision: PrecisionConfig | None = None
    """High-precision word list and URL whitelist (off unless configured)."""


@dataclass(frozen=True)
class FixTextConfig:
    """ftfy's `fix_text` with the settings of datatrove's `FTFYFormatter`: fix mojibake and encoding damage, but
    keep the text's own formatting (quotes, widths, ligatures, line breaks, Unicode normal form)."""

    uncurl_quotes: bool = False
    """Turn curly quotes into straight ones."""
    fix_character_width: bool = False
    """Turn full-width characters into half-width ones (wrong for Chinese and Japanese punctuation)."""
    fix_latin_ligatures: bool = False
    """Turn ligatures such as `ﬁ` into letters."""
    fix_line_breaks: bool = False
    """Turn `\\r\\n` and other line breaks into `\\n`."""
    normalization: str | None = None
    """Unicode normal form (`NFC`, `NFKC`, …); null keeps the text's own."""

    def __post_init__(self) -> None:
        if self.normalization not in (None, "NFC", "NFD", "NFKC", "NFKD"):
            raise ConfigError(
                f"formatters.fix_text.normalization: NFC, NFD, NFKC, NFKD or null, got {self.normalization!r}")


@dataclass(frozen=True)
class PiiConfig:
    """Replace e-mail addresses and public IP addresses (datatrove's `PIIFormatter` patterns). Replacements are
    used in turn within a document, starting again with the first in every document (so output does not depend
    on how documents are batched)."""

    replace_emails: bool = True
    """Replace e-mail addresses."""
    replace_public_ips: bool = True
    """Replace IPv4 addresses that are globally routable (private, loopback and reserved ones stay)."""
    email_replacements: list[str] = field(
        default_factory=lambda: ["email@example.com", "firstname.lastname@example.org"])
    """What e-mail addresses become, used in turn."""
    ip_replacements: list[str] = field(default_factory=lambda: [
        "22.214.171.124", "126.96.36.199", "188.8.131.52", "184.108.40.206", "220.127.116.11", "18.104.22.168"])
    """What IP addresses become, used in turn (datatrove's list: addresses that did not answer pings)."""

    def __post_init__(self) -> None:
        if not self.email_replacements or not self.ip_replacements:
            raise ConfigError("formatters.pii: email_replacements and ip_replacements need at least one entry")


@dataclass(frozen=True)
class TableArtifactsConfig:
    """Remove lines made only of table-border symbols that trafilatura leaves behind (datatrove's
    `SymbolLinesFormatter`, as FineWeb2 runs it)."""

    symbols: list[str] = field(default_factory=lambda: ["|"])
    """Characters that make a line an artefact when it holds only them (and spaces)."""
    replace_with: str = "\n"
    """What a run of artefact lines becomes (`"\\n"` keeps a paragraph break, `""` joins the neighbours)."""


@dataclass(frozen=True)
class FormattersConfig:
    """Text fix-ups applied to kept documents after the filters (FineWeb2's "final touches", in its order).
    `null` switches a formatter off."""

    fix_text: FixTextConfig | None = field(default_factory=FixTextConfig)
    """FTFY encoding repair."""
    pii: PiiConfig | None = field(default_factory=PiiConfig)
    """E-mail and public IP replacement."""
    table_artifacts: TableArtifactsConfig | None = field(default_factory=TableArtifactsConfig)
    """trafilatura table-border cleanup."""


