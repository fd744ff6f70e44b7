"""Ranged reads: selected byte ranges of one file, read in offset order as one stream.

Each record of a Common Crawl `.warc.gz` is its own gzip member, so the ranges of the selected records,
concatenated, are themselves a valid `.warc.gz` stream: the WARC reader reads a `RangedStream` exactly as it
reads a whole file. Ranges closer than `max_gap` bytes are fetched with one request (the bytes between them
are fetched and thrown away); requests go out in batches of at most `batch_bytes`, so memory stays bounded,
and a request that fails with throttling or a dropped connection is retried with the run's backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

from curate.pipeline.sources.remote import (RETRY_STATUS, ReadStream, RetryPolicy, SourceUnavailable, TransientError,
                                            is_transient)

log = logging.getLogger("curate")

# Ranges at most this far apart share one request (Arrow's default hole size for object stores): between two
# responses of a Common Crawl WARC lie their request and metadata records (~1-2 KB), so neighbouring selected
# responses are one request, while a skipped response (~20 KB) is never fetched.
MAX_GAP = 8 << 10
BATCH_BYTES = 16 << 20  # bytes fetched per batch of requests: what the stream holds in memory at most
HTTP_CONNECTIONS = 16  # ranged HTTP requests in flight per stream

Span = tuple[int, int]  # (offset, length)
Fetch = Callable[[list[Span]], list["bytes | BaseException"]]


@dataclass(frozen=True)
class RangeRequest:
    """One request: `offset`/`length` on the file, covering the selected `spans` (and the gaps between them)."""

    offset: int
    length: int
    spans: tuple[Span, ...]


def merge_spans(spans: Sequence[Span], max_gap: int = MAX_GAP) -> list[RangeRequest]:
    """The requests that read `spans` (offset order): neighbours at most `max_gap` bytes apart share one."""
    merged: list[RangeRequest] = []
    start, end, members = -1, -1, []
    for offset, length in sorted(spans):
        if members and offset - end <= max_gap:
            end = max(end, offset + length)
            members.append((offset, length))
            continue
        if members:
            merged.append(RangeRequest(start, end - start, tuple(members)))
        start, end, members = offset, offset + length, [(offset, length)]
    if members:
        merged.append(RangeRequest(start, end - start, tuple(members)))
    return merged


class RangedStream(ReadStream):
    """The bytes of `spans` of one file, in offset order, as one read-only stream.

    `fetch(ranges)` returns, per (offset, length) asked, the bytes or the exception it raised. `fetched`
    counts the bytes received (the selected bytes plus the merged gaps); `position` the bytes handed to
    the reader (the selected bytes); `retries` the requests that were retried.
    """

    def __init__(self, fetch: Fetch, spans: Sequence[Span], name: str, policy: RetryPolicy | None = None,
                 max_gap: int = MAX_GAP, batch_bytes: int = BATCH_BYTES):
        self.fetch = fetch
        self.name = name
        self.policy = policy or RetryPolicy()
        self.requests = merge_spans(spans, max_gap)
        self.batch_bytes = batch_bytes
        self.position = 0
        self.fetched = 0
        self.retries = 0
        self._next = 0
        self._parts: deque[memoryview] = deque()
        self._buffer = memoryview(b"")

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes, as a file gives them: short only at the end (the WARC reader's resync after a
        damaged gzip member relies on reads that span members, as reads of a whole file do)."""
        if size is None or size < 0:
            size = 1 << 62
        chunks: list[bytes] = []
        wanted = size
        while wanted:
            if not self._buffer:
                if self._parts:
                    self._buffer = self._parts.popleft()
                    continue
                if self._next >= len(self.requests):
                    break
                self._fill()
                continue
            chunks.append(bytes(self._buffer[:wanted]))
            self._buffer = self._buffer[wanted:]
            wanted -= len(chunks[-1])
        data = b"".join(chunks)
        self.position += len(data)
        return data

    def _fill(self) -> None:
        """Fetch the next batch of requests and queue the selected spans' bytes."""
        batch = [self.requests[self._next]]
        total = batch[0].length
        while self._next + len(batch) < len(self.requests):
            candidate = self.requests[self._next + len(batch)]
            if total + candidate.length > self.batch_bytes:
                break
            batch.append(candidate)
            total += candidate.length
        self._next += len(batch)
        for request, data in zip(batch, self._fetch_with_retry(batch)):
            view = memoryview(data)
            for offset, length in request.spans:
                self._parts.append(view[offset - request.offset: offset - request.offset + length])

    def _fetch_with_retry(self, batch: list[RangeRequest]) -> list[bytes]:
        results: list[bytes | None] = [None] * len(batch)
        todo = list(range(len(batch)))
        delays = self.policy.delays()
        while todo:
            answers = self.fetch([(batch[i].offset, batch[i].length) for i in todo])
            failed: list[tuple[int, BaseException]] = []
            for i, answer in zip(todo, answers):
                if isinstance(answer, BaseException):
                    if not is_transient(answer):
                        raise answer
                    failed.append((i, answer))
                elif len(answer) < batch[i].length:
                    failed.append((i, TransientError(f"{len(answer)} of {batch[i].length} bytes at {batch[i].offset}")))
                elif len(answer) > batch[i].length:
                    raise IOError(f"{self.name}: asked for {batch[i].length} bytes at {batch[i].offset}, got "
                                  f"{len(answer)}: the server does not honour byte ranges")
                else:
                    results[i] = answer
                    self.fetched += len(answer)
            todo = [i for i, _ in failed]
            if failed:
                delay = next(delays, None)
                error = failed[0][1]
                if delay is None:
                    raise SourceUnavailable(f"{self.name}: giving up after {self.policy.attempts} attempts ({error})") from error
                self.retries += len(failed)
                log.warning("%s: %d range request(s) failed (%s: %s); retrying in %.1fs", self.name, len(failed),
                            type(error).__name__, error, delay)
                time.sleep(delay)
        return [r for r in results if r is not None]

    def close(self) -> None:
        self._parts.clear()
        self._buffer = memoryview(b"")
        closer = getattr(self.fetch, "close", None)
        if closer is not None:
            closer()
        super().close()


def fsspec_fetch(fs, path: str) -> Fetch:
    """Ranges of `path` on an fsspec filesystem, through `cat_ranges` (concurrent on object stores)."""

    def fetch(spans: list[Span]) -> list[bytes | BaseException]:
        return fs.cat_ranges([path] * len(spans), [o for o, _ in spans], [o + n for o, n in spans],
                             on_error="return")

    return fetch


class HttpFetch:
    """Ranges of one URL, `HTTP_CONNECTIONS` `Range` requests at a time (one requests session per thread)."""

    def __init__(self, url: str, connections: int = HTTP_CONNECTIONS):
        self.url = url
        self.connections = connections
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None

    def __call__(self, spans: list[Span]) -> list[bytes | BaseException]:
        if len(spans) == 1:
            return [self._one(spans[0])]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.connections, thread_name_prefix="curate-range")
        return list(self._pool.map(self._one, spans))

    def _one(self, span: Span) -> bytes | BaseException:
        offset, length = span
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        try:
            response = session.get(self.url, headers={"Range": f"bytes={offset}-{offset + length - 1}"},
                                   stream=True, timeout=(10, 60))
        except requests.RequestException as error:
            return error
        with response:
            if response.status_code in RETRY_STATUS:
                return TransientError(f"HTTP {response.status_code}")
            if response.status_code == 404:
                return FileNotFoundError(self.url)
            if response.status_code != 206 and not (response.status_code == 200 and offset == 0):
                return IOError(f"{self.url}: HTTP {response.status_code} to a Range request")
            parts, remaining = [], length
            try:
                while remaining:
                    chunk = response.raw.read(min(remaining, 1 << 20), decode_content=False)
                    if not chunk:
                        break
                    parts.append(chunk)
                    remaining -= len(chunk)
            except Exception as error:  # noqa: BLE001 - classified by the caller (is_transient)
                return error
            return b"".join(parts)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None


__all__ = ["MAX_GAP", "HttpFetch", "RangeRequest", "RangedStream", "fsspec_fetch", "merge_spans"]
