"""URL filter: drops documents whose URL is on a domain/URL blocklist or holds banned words (offline lists).

The lists are the ones FineWeb uses, shipped inside the datatrove wheel (UT1 adult blocklist, banned
words and subwords); reasons match datatrove's URLFilter: domain, subdomain, url, hard_blacklisted,
soft_blacklisted, blacklisted_subword.
"""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.blocks.base import Block, mark_dropped

WORD_SPLIT = re.compile(r"[^a-zA-Z0-9]+")


def _assets() -> Path:
    from datatrove.utils._import_utils import ASSETS_PATH

    return Path(ASSETS_PATH)


def _normalise(text: str) -> str:
    return WORD_SPLIT.sub("", text).lower()


def _word_list(path: Path) -> frozenset[str]:
    return frozenset(_normalise(w) for w in path.read_text().splitlines() if w and not w.startswith("#"))


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class HashedSet:
    """A large string set as a sorted array of 64-bit hashes (fast to load, small in memory)."""

    hashes: np.ndarray

    def __contains__(self, text: object) -> bool:
        value = np.uint64(_hash64(str(text)))
        index = int(np.searchsorted(self.hashes, value))
        return index < len(self.hashes) and self.hashes[index] == value


@dataclass(frozen=True)
class UrlLists:
    domains: HashedSet
    urls: HashedSet
    banned_words: frozenset[str]
    soft_banned_words: frozenset[str]
    banned_subwords: object  # an ahocorasick.Automaton


def _hashed_blocklists() -> tuple[HashedSet, HashedSet]:
    """Domains and URLs of the UT1 list as hashed sets, cached on disk under ~/.cache/curate (built once, ~10 s)."""
    archive = _assets() / "url_filterblacklistsv0_3_0.tar.gz"
    cache_dir = Path(os.environ.get("CURATE_CACHE", Path.home() / ".cache" / "curate"))
    cached = cache_dir / f"url-blocklist-{archive.stat().st_size}.npz"
    if cached.is_file():
        arrays = np.load(cached)
        return HashedSet(arrays["domains"]), HashedSet(arrays["urls"])
    found: dict[str, set[int]] = {"domains": set(), "urls": set()}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            data = tar.extractfile(member)
            if data is None:
                continue
            target = found["domains"] if Path(member.name).name == "domains" else found["urls"]
            for line in data.read().decode("utf-8", "ignore").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    target.add(_hash64(line))
    arrays = {name: np.sort(np.fromiter(values, dtype=np.uint64)) for name, values in found.items()}
    try:  # a node whose cache folder cannot be written rebuilds the sets in each process instead
        cache_dir.mkdir(parents=True, exist_ok=True)
        temporary = cached.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(temporary, **arrays)
        os.replace(temporary, cached)
    except OSError:
        pass
    return HashedSet(arrays["domains"]), HashedSet(arrays["urls"])


@cache
def load_url_lists() -> UrlLists:
    """The blocklists, loaded once per worker process (from the datatrove wheel's assets)."""
    import ahocorasick

    domains, urls = _hashed_blocklists()
    automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    for index, word in enumerate(_word_list(_assets() / "banned_subwords.txt")):
        automaton.add_word(word, index)
    automaton.make_automaton()
    return UrlLists(
        domains=domains,
        urls=urls,
        banned_words=_word_list(_assets() / "banned_words.txt"),
        soft_banned_words=_word_list(_assets() / "soft_banned_words.txt"),
        banned_subwords=automaton,
    )


@cache
def _tld_extractor():
    from tldextract import TLDExtract

    return TLDExtract(suffix_list_urls=(), cache_dir=None)  # the snapshot inside the wheel: no network


@dataclass
class UrlFilter(Block):
    """Marks rows whose `url` is blocklisted with `url_filter.<reason>`."""

    name = "url_filter"
    reads = ("url",)
    writes = ("drop_reason",)
    soft_word_threshold: int = 2

    def check(self) -> None:
        load_url_lists()

    def provenance(self) -> dict[str, str]:
        data = (_assets() / "url_filterblacklistsv0_3_0.tar.gz").read_bytes()
        return {"url_blocklist_sha256": hashlib.sha256(data).hexdigest()}

    def reason(self, url: str) -> str | None:
        lists = load_url_lists()
        parts = _tld_extractor()(url)
        if parts.top_domain_under_public_suffix in lists.domains:
            return "domain"
        if parts.fqdn in lists.domains:
            return "subdomain"
        if url in lists.urls:
            return "url"
        words = set(WORD_SPLIT.split(url.lower()))
        if words & lists.banned_words:
            return "hard_blacklisted"
        if len(words & lists.soft_banned_words) >= self.soft_word_threshold:
            return "soft_blacklisted"
        if next(lists.banned_subwords.iter(_normalise(url)), None) is not None:
            return "blacklisted_subword"
        return None

    def apply(self, batch: pa.Table) -> pa.Table:
        reasons = [self.reason(url or "") for url in batch["url"].to_pylist()]
        for reason in {r for r in reasons if r}:
            batch = mark_dropped(batch, [r == reason for r in reasons], f"{self.name}.{reason}")
        return batch
