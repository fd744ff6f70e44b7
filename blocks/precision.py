"""The precision filter (FineWeb2, June 2025) for languages whose LID output holds related languages.

A document is kept if its URL points to the language (a whitelisted country-code domain, the language code
as a URL token of its own: host label, path segment or language parameter, or a whitelisted language or place
name in it) or its text contains at least
`min_words` distinct words of the language's high-precision word list (words frequent in the language and
rare in the languages LID confuses it with). Otherwise it gets `drop_reason = precision.no_language_evidence`.

The word count needs the word tokens, so it is a stage-1 statistic (`stat_precision_word_count`, by
`PrecisionStatistics`); the URL check reads the `url` core column in stage 3 (`PrecisionFilter`), so a new
whitelist needs no new stage 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pyarrow as pa

from curate.errors import UserError
from curate.blocks.base import Block, mark_dropped, set_column
from curate.blocks.words import WORDS
from curate.language_configs.filters import PrecisionConfig

PRECISION_WORDS = "stat_precision_word_count"
REASON = "precision.no_language_evidence"
_URL_NOISE = re.compile(r"[^a-zA-Z0-9/.]+")
_LOCALE = re.compile(r"^([a-z]{2,3})(?:[-_][a-z]{2,4})?$")  # `fi`, `fi-FI`, `fin_Latn`
_LANGUAGE_PARAMETERS = frozenset({"lang", "language", "locale", "hl", "lng"})


def url_language_tokens(url: str) -> set[str]:
    """The language codes a URL names as a token of its own, lowercased: a host label (`fi.example.com`), a
    path segment (`/fi/`, `/fi-fi/`) or a language parameter (`?lang=fi`, `hl=fi_FI`). Words that merely
    contain a code (`/film-reviews`, `profile.example.com`) name none."""
    parts = urlsplit(url if "//" in url else "//" + url)
    pieces = (parts.hostname or "").split(".") + parts.path.split("/")
    pieces += [value for key, value in parse_qsl(parts.query) if key.lower() in _LANGUAGE_PARAMETERS]
    return {match[1] for piece in pieces if (match := _LOCALE.match(piece.lower()))}


def resolve_list_path(path: str) -> Path:
    """A list file named in a config: absolute, beside a config directory, or from the working directory."""
    from curate.language_configs.schema import config_dirs

    candidate = Path(path).expanduser()
    if candidate.is_absolute():
        if candidate.is_file():
            return candidate
    else:
        for directory in [*config_dirs(), Path.cwd()]:
            if (directory / candidate).is_file():
                return directory / candidate
    raise UserError(f"precision filter list {path!r} not found (looked beside the language configs and in the "
                    "working directory): write the file or fix filters.precision in the config")


@cache
def _read_list(path: str, lowercase: bool) -> frozenset[str]:
    lines = resolve_list_path(path).read_text(encoding="utf-8").splitlines()
    words = (line.strip() for line in lines)
    return frozenset((w.lower() if lowercase else w) for w in words if w and not w.startswith("#"))


@dataclass(frozen=True)
class UrlWhitelist:
    """URL evidence: country-code domains (`.fi`), stand-alone language codes, and names looked for in the URL."""

    domains: tuple[str, ...]
    codes: tuple[str, ...]
    names: tuple[str, ...]

    def matches(self, url: str | None) -> bool:
        if not url:
            return False
        host = (urlsplit(url if "//" in url else "//" + url).hostname or "").lower()
        if any(host.endswith(domain) for domain in self.domains):
            return True
        if self.codes and not url_language_tokens(url).isdisjoint(c.lower() for c in self.codes):
            return True
        normalised = _URL_NOISE.sub("", url).lower()
        return any(name in normalised for name in self.names)


@cache
def _whitelist(path: str | None, codes: tuple[str, ...]) -> UrlWhitelist:
    entries = sorted(_read_list(path, True)) if path else []
    return UrlWhitelist(
        domains=tuple(e for e in entries if e.startswith(".")),
        codes=codes,
        names=tuple(_URL_NOISE.sub("", e) for e in entries if not e.startswith(".")),
    )


@dataclass
class PrecisionStatistics(Block):
    """Stage 1: adds `stat_precision_word_count`, the distinct high-precision words among `words`."""

    settings: PrecisionConfig
    name = "precision_statistics"
    reads = (WORDS,)
    writes = (PRECISION_WORDS,)

    def check(self) -> None:
        _read_list(self.settings.word_list, self.settings.lowercase)

    def provenance(self) -> dict[str, str]:
        import hashlib

        data = resolve_list_path(self.settings.word_list).read_bytes()
        return {"precision_word_list_sha256": hashlib.sha256(data).hexdigest()}

    def fingerprint(self) -> object:
        return {"block": self.name, "word_list": self.settings.word_list, "lowercase": self.settings.lowercase}

    def apply(self, batch: pa.Table) -> pa.Table:
        words = _read_list(self.settings.word_list, self.settings.lowercase)
        lowercase = self.settings.lowercase
        counts = [
            len(words.intersection(w.lower() for w in tokens) if lowercase else words.intersection(tokens))
            for tokens in (t or [] for t in batch[WORDS].to_pylist())
        ]
        return set_column(batch, PRECISION_WORDS, pa.array(counts, pa.int64()))


@dataclass
class PrecisionFilter(Block):
    """Stage 3: marks documents with neither URL evidence nor enough high-precision words
    (`precision.no_language_evidence`)."""

    settings: PrecisionConfig
    name = "precision"
    reads = ("url", PRECISION_WORDS)
    writes = ("drop_reason",)

    def check(self) -> None:
        _whitelist(self.settings.url_whitelist, tuple(self.settings.url_language_codes))

    def apply(self, batch: pa.Table) -> pa.Table:
        whitelist = _whitelist(self.settings.url_whitelist, tuple(self.settings.url_language_codes))
        url_match = np.fromiter((whitelist.matches(u) for u in batch["url"].to_pylist()), bool, batch.num_rows)
        enough_words = np.asarray(batch[PRECISION_WORDS].to_numpy()) >= self.settings.min_words
        return mark_dropped(batch, ~(url_match | enough_words), REASON)
