"""Toxicity signals: a per-language word list, a fastText toxicity classifier, and the adult-domain list.

Word-list matching: the text and every list entry (a word or a phrase, LDNOOBW format: one a line) are
casefolded and cut into tokens the same way — runs of letters, marks and digits; in scripts written without
spaces (`blocks.words.UNSPACED_SCRIPTS`: Han, Japanese, Thai, …) every letter (with its marks) and digit is a
token. An entry matches where its tokens appear consecutively (longest entry first, matches do not overlap), so a
word never matches inside a longer word of a spaced script. `toxicity_count` is the number of matches and
`toxicity_share` the share of the document's tokens inside matches (0 for a document without tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import regex

from curate.errors import UserError
from curate.blocks.base import Scorer, mark_dropped, set_column
from curate.blocks.lid import file_sha256
from curate.blocks.model_files import resolve_file
from curate.blocks.score_quality import FastTextLabelScore
from curate.blocks.url_filter import UrlFilter, load_url_lists

SPACED_TOKEN = regex.compile(r"[\p{L}\p{M}\p{N}]+")
UNSPACED_TOKEN = regex.compile(r"[\p{L}\p{N}]\p{M}*")
WORDS_HINT = "give the path, hf://owner/repo/file or URL of a word list (one word or phrase a line)"


def tokens(text: str, unspaced: bool) -> list[str]:
    """The casefolded tokens the word list is matched against (module docstring)."""
    return (UNSPACED_TOKEN if unspaced else SPACED_TOKEN).findall(text.casefold())


@dataclass(frozen=True)
class Lexicon:
    """List entries as token tuples, indexed by their first token (longest first)."""

    by_first: dict[str, tuple[tuple[str, ...], ...]]

    @classmethod
    def from_entries(cls, entries: list[str], unspaced: bool) -> Lexicon:
        index: dict[str, set[tuple[str, ...]]] = {}
        for entry in entries:
            parts = tuple(tokens(entry, unspaced))
            if parts:
                index.setdefault(parts[0], set()).add(parts)
        return cls({first: tuple(sorted(found, key=len, reverse=True)) for first, found in index.items()})

    def matches(self, words: list[str]) -> tuple[int, int]:
        """(matches, tokens inside matches) in a token list."""
        count = covered = 0
        position = 0
        for start in [i for i, word in enumerate(words) if word in self.by_first]:
            if start < position:
                continue  # inside the previous match
            for entry in self.by_first[words[start]]:
                if len(entry) == 1 or tuple(words[start:start + len(entry)]) == entry:
                    count, covered, position = count + 1, covered + len(entry), start + len(entry)
                    break
        return count, covered


@cache
def load_lexicon(path: str, unspaced: bool) -> Lexicon:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    entries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return Lexicon.from_entries(entries, unspaced)


@dataclass
class ToxicityLexicon(Scorer):
    """Adds `toxicity_share` (share of tokens in word-list matches) and `toxicity_count` (matches) from `text`;
    drops documents above `max_share` (`toxicity.share_high`) when it is set."""

    words: str
    unspaced: bool = False
    """Tokenize as a script written without spaces (every letter a token)."""
    max_share: float | None = None
    language: str = ""
    """The config's language code, for messages."""
    name = "toxicity"
    reads = ("text",)
    writes = ("toxicity_share", "toxicity_count", "drop_reason")
    score_columns = ("toxicity_share", "toxicity_count")

    def list_path(self) -> Path:
        where = f"{self.language} scorers.toxicity.words".strip()
        return resolve_file(self.words, where, WORDS_HINT, urls=True)

    def lexicon(self) -> Lexicon:
        path = self.list_path()
        try:
            lexicon = load_lexicon(str(path), self.unspaced)
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"{self.language} scorers.toxicity.words: cannot read {path} as UTF-8 text "
                            f"({type(error).__name__}); {WORDS_HINT}") from None
        if not lexicon.by_first:
            raise UserError(f"{self.language} scorers.toxicity.words: {path} holds no words; {WORDS_HINT}")
        return lexicon

    def check(self) -> None:
        self.lexicon()

    def provenance(self) -> dict[str, str]:
        return {f"toxicity_words:{self.words}": file_sha256(str(self.list_path()))}

    def score(self, batch: pa.Table) -> pa.Table:
        lexicon = self.lexicon()
        counts, shares = [], []
        for text in batch["text"].to_pylist():
            words = tokens(text or "", self.unspaced)
            count, covered = lexicon.matches(words)
            counts.append(count)
            shares.append(covered / len(words) if words else 0.0)
        batch = set_column(batch, "toxicity_share", pa.array(np.array(shares, dtype=np.float64), pa.float64()))
        return set_column(batch, "toxicity_count", pa.array(counts, pa.int64()))

    def decide(self, batch: pa.Table) -> pa.Table:
        if self.max_share is None:
            return batch
        return mark_dropped(batch, batch["toxicity_share"].to_numpy() > self.max_share, f"{self.name}.share_high")

    def without_threshold(self) -> ToxicityLexicon:
        return replace(self, max_share=None)


@dataclass
class ToxicityClassifier(FastTextLabelScore):
    """Adds `toxicity_score`: P(toxic label) under a fastText toxicity classifier; drops documents above
    `threshold` (`toxicity_classifier.score_high`) when it is set."""

    name = "toxicity_classifier"
    reads = ("text",)
    writes = ("toxicity_score", "drop_reason")
    column = "toxicity_score"
    rule = "score_high"
    config_key = "scorers.toxicity.classifier.model"
    drop_above = True


ADULT_REASONS = frozenset({"domain", "subdomain", "url"})


@dataclass
class AdultDomain(Scorer):
    """Adds `adult_domain`: the `url`'s registered domain, host or URL is on the UT1 adult list (the URL filter's
    list, `blocks.url_filter`). A score only: with the URL filter on, these documents were dropped in stage 1."""

    name = "adult_domain"
    reads = ("url",)
    writes = ("adult_domain",)
    score_columns = ("adult_domain",)

    def check(self) -> None:
        load_url_lists()

    def provenance(self) -> dict[str, str]:
        return UrlFilter().provenance()

    def score(self, batch: pa.Table) -> pa.Table:
        url_filter = UrlFilter()
        flags = [bool(url) and url_filter.reason(url) in ADULT_REASONS for url in batch["url"].to_pylist()]
        return set_column(batch, "adult_domain", pa.array(flags, pa.bool_()))
