"""Where WARCs come from: the Common Crawl layout over HTTPS, `s3://commoncrawl`, or a local mirror.

A source has crawls (`CC-MAIN-2024-22`), each with `crawl-data/<crawl>/warc.paths.gz` listing its
WARC files. The crawl list comes from `collinfo.json` (index.commoncrawl.org for the default source,
the mirror's root for a local directory or another HTTP mirror) or, on S3, from listing `crawl-data/`.
A WARC is read whole, or (an index-guided run, see `pipeline.sources.cc_index`) only the byte ranges of the
records selected in Common Crawl's columnar index.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import BinaryIO

import fsspec
import numpy as np
import requests

from curate.errors import UserError
from curate.pipeline.execution.options import DEFAULT_SOURCE
from curate.pipeline.sources.ranged import HttpFetch, RangedStream, Span, fsspec_fetch
from curate.pipeline.sources.remote import RetryPolicy, SourceUnavailable, TransientError, open_fsspec, open_http

CC_INDEX_COLLINFO = "https://index.commoncrawl.org/collinfo.json"
CANONICAL_PREFIX = "s3://commoncrawl/"


@dataclass(frozen=True)
class WarcFile:
    """One WARC of a crawl: `path` is relative to the source root (`crawl-data/…/x.warc.gz`).

    An index-guided run reads only some records: `ranges` holds their (offset, length) pairs, packed as
    little-endian int64 (16 bytes a record: a crawl's plan holds millions), and `considered` counts the
    file's index records a full run would extract (HTML, status 200). `ranges=None` reads the whole file.
    """

    crawl: str
    path: str
    ranges: bytes | None = field(default=None, repr=False)
    considered: int = 0

    @classmethod
    def with_ranges(cls, crawl: str, path: str, spans: Sequence[Span] | np.ndarray, considered: int = 0) -> WarcFile:
        """The file with only `spans` ((offset, length) pairs) to read, in offset order."""
        array = np.asarray(spans, dtype="<i8").reshape(-1, 2)
        array = array[np.argsort(array[:, 0], kind="stable")]
        return cls(crawl, path, array.tobytes(), considered)

    def spans(self) -> list[Span] | None:
        """The (offset, length) pairs to read, or None for the whole file."""
        if self.ranges is None:
            return None
        return [(int(o), int(n)) for o, n in np.frombuffer(self.ranges, dtype="<i8").reshape(-1, 2)]

    @property
    def records(self) -> int:
        """How many records the ranges select (0 for a whole file)."""
        return len(self.ranges) // 16 if self.ranges is not None else 0

    @property
    def name(self) -> str:
        """The file's Common Crawl name (`s3://commoncrawl/crawl-data/…`), the same whatever mirror was read:
        what the `file_path` column holds."""
        return CANONICAL_PREFIX + self.path

    @property
    def canonical(self) -> str:
        """What identifies this input in unit ids, fingerprints and manifests: the Common Crawl name, plus
        (ranges only) `#ranges=<count>:<digest>`, so a changed selection is another input."""
        if self.ranges is None:
            return self.name
        return f"{self.name}#ranges={self.records}:{hashlib.sha256(self.ranges).hexdigest()[:16]}"


class Source:
    """A Common Crawl layout at `location`: an https URL, an s3:// bucket, or a local directory."""

    def __init__(self, location: str = DEFAULT_SOURCE, policy: RetryPolicy | None = None):
        self.location = location.rstrip("/")
        self.policy = policy or RetryPolicy()

    @property
    def is_http(self) -> bool:
        return self.location.startswith(("http://", "https://"))

    @cached_property
    def fs(self) -> fsspec.AbstractFileSystem:
        filesystem, _ = fsspec.core.url_to_fs(self.location)
        return filesystem

    def _root(self) -> str:
        return fsspec.core.url_to_fs(self.location)[1]

    def url(self, path: str) -> str:
        """`path` (relative to the root) as the filesystem `fs` names it."""
        return f"{self.location}/{path}" if self.is_http else f"{self._root()}/{path}"

    def open(self, path: str, spans: Sequence[Span] | None = None) -> BinaryIO:
        """A resumable stream over the file at `path` (relative to the root), or over only its byte ranges
        `spans` ((offset, length) pairs, read in offset order with ranged requests)."""
        url = self.url(path)
        if spans is not None:
            fetch = HttpFetch(url) if self.is_http else fsspec_fetch(self.fs, url)
            return RangedStream(fetch, spans, url, self.policy)
        if self.is_http:
            return open_http(url, self.policy)
        return open_fsspec(self.fs, url, self.policy)

    def size(self, path: str) -> int | None:
        try:
            if self.is_http:
                response = requests.head(f"{self.location}/{path}", timeout=30, allow_redirects=True)
                length = response.headers.get("Content-Length")
                return int(length) if response.ok and length else None
            return int(self.fs.size(f"{self._root()}/{path}"))
        except (OSError, requests.RequestException, ValueError):
            return None

    def read_small(self, path: str) -> bytes:
        """The whole content of a small file (a listing, `collinfo.json`); FileNotFoundError if it is missing."""
        stream = self.open(path)
        try:
            return stream.read()
        finally:
            stream.close()

    def crawls(self) -> list[str]:
        """The crawl ids this source has, newest first."""
        try:
            if self.location == DEFAULT_SOURCE:
                text = _http_get_text(CC_INDEX_COLLINFO, self.policy)
                return _crawl_ids(json.loads(text))
            if not self.is_http and not self.fs.exists(f"{self._root()}/collinfo.json"):
                listed = self.fs.ls(f"{self._root()}/crawl-data", detail=False)
                return sorted((p.rsplit("/", 1)[-1] for p in listed if "CC-MAIN-" in p), reverse=True)
            return _crawl_ids(json.loads(self.read_small("collinfo.json")))
        except (FileNotFoundError, json.JSONDecodeError) as error:
            raise UserError(f"{self.location} is not a Common Crawl layout: no readable collinfo.json or "
                            f"crawl-data/ ({type(error).__name__})") from None
        except SourceUnavailable as error:  # names the host that failed (index.commoncrawl.org for the crawl list)
            raise UserError(f"{error}; check the network, or use --source DIR") from None
        except (OSError, requests.RequestException) as error:
            raise UserError(f"cannot reach {self.location} ({error}); check the network or use --source DIR") from None

    def warc_files(self, crawl: str) -> list[WarcFile]:
        """Every WARC of `crawl`, in warc.paths.gz order."""
        listing = f"crawl-data/{crawl}/warc.paths.gz"
        try:
            data = gzip.decompress(self.read_small(listing))
        except FileNotFoundError:
            raise UserError(f"{self.location} has no {listing}") from None
        return [WarcFile(crawl, line.strip()) for line in data.decode().splitlines() if line.strip()]


def _http_get_text(url: str, policy: RetryPolicy) -> str:
    stream = open_http(url, policy)
    try:
        return stream.read().decode("utf-8")
    finally:
        stream.close()


def _crawl_ids(collinfo: list[dict]) -> list[str]:
    return [entry["id"] for entry in collinfo if str(entry.get("id", "")).startswith("CC-MAIN-")]


def match_crawls(patterns: str, available: list[str]) -> list[str]:
    """Crawls matching comma-separated globs (`2024-*`, `CC-MAIN-2024-1?`), oldest first; UserError if none."""
    globs = [p.strip() for p in patterns.split(",") if p.strip()]
    globs = [g if g.startswith("CC-MAIN-") else f"CC-MAIN-{g}" for g in globs]
    chosen = sorted({crawl for crawl in available for g in globs if fnmatch.fnmatchcase(crawl, g)})
    if not chosen:
        shown = ", ".join(available[:12]) + (f", … ({len(available)} in all)" if len(available) > 12 else "")
        raise UserError(f"no crawl matches {patterns!r}; the source has: {shown or 'no crawls'}")
    return chosen


def sample_files(files: list[WarcFile], max_files: int | None, seed: int) -> list[WarcFile]:
    """A seeded sample of at most `max_files` per crawl, kept in listing order."""
    if max_files is None or len(files) <= max_files:
        return files
    picked = set(random.Random(f"{seed}:{files[0].crawl}").sample(range(len(files)), max_files))
    return [f for i, f in enumerate(files) if i in picked]


__all__ = ["DEFAULT_SOURCE", "Source", "TransientError", "WarcFile", "match_crawls", "sample_files"]
