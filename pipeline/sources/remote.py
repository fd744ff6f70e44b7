"""Streaming reads that survive throttling (503 / SlowDown) and dropped connections.

`ResumableStream` reads a resource sequentially; when the connection drops or the server throttles,
it waits (exponential backoff) and reopens the resource at the byte it had reached, so a WARC is read
once, end to end, whatever the network does.
"""

from __future__ import annotations

import io
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urlparse

import requests

log = logging.getLogger("curate")

RETRY_STATUS = {408, 429, 500, 502, 503, 504}


class TransientError(IOError):
    """A failure worth retrying (throttling, a reset connection)."""


class SourceUnavailable(IOError):
    """A source that kept failing past the retry budget: the environment's fault, not the file's."""


@dataclass
class RetryPolicy:
    """How often and how patiently to retry: delay doubles from `initial_delay_s` up to `max_delay_s`."""

    attempts: int = 8
    initial_delay_s: float = 1.0
    max_delay_s: float = 60.0

    def delays(self):
        delay = self.initial_delay_s
        for _ in range(self.attempts - 1):
            yield delay
            delay = min(delay * 2, self.max_delay_s)


def unreachable(error: BaseException) -> str | None:
    """Why a host cannot be reached at all (its name does not resolve, it refuses connections), or None: such an
    error is reported at once, not retried for minutes (timeouts and 5xx keep their backoff)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        text = f"{type(error).__name__} {error}"
        if isinstance(error, socket.gaierror) or "NameResolutionError" in text or "Name or service not known" in text \
                or "nodename nor servname" in text or "Temporary failure in name resolution" in text:
            return "its name does not resolve (DNS)"
        if isinstance(error, ConnectionRefusedError) or "Connection refused" in text:
            return "it refuses connections"
        error = error.__cause__ or error.__context__ or (error.args[0] if error.args and
                                                         isinstance(error.args[0], BaseException) else None)
    return None


def is_transient(error: BaseException) -> bool:
    """Whether an error from requests, fsspec/s3fs or botocore is worth a retry."""
    if isinstance(error, (TransientError, ConnectionError, TimeoutError, requests.ConnectionError,
                          requests.Timeout, requests.exceptions.ChunkedEncodingError)):
        return True
    text = f"{type(error).__name__} {error}"
    return any(mark in text for mark in ("SlowDown", "503", "Throttl", "RequestTimeout", "ConnectionReset",
                                         "IncompleteRead", "ProtocolError", "ReadTimeout", "ServerDisconnected"))


class ReadStream(io.RawIOBase):
    """A readable raw stream whose subclasses define `read(size)`; `readinto` (what buffered readers and
    gzip call) is built on it."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class ResumableStream(ReadStream):
    """A read-only stream over `open_at(offset)`, reopened at the current offset after transient errors."""

    def __init__(self, open_at: Callable[[int], BinaryIO], name: str, policy: RetryPolicy | None = None):
        self.open_at = open_at
        self.name = name
        self.policy = policy or RetryPolicy()
        self.position = 0
        self.retries = 0
        self._stream: BinaryIO | None = None

    def _with_retry(self, action: Callable[[], bytes]) -> bytes:
        delays = self.policy.delays()
        while True:
            try:
                if self._stream is None:
                    self._stream = self.open_at(self.position)
                return action()
            except Exception as error:  # noqa: BLE001 - classified just below
                why = unreachable(error)
                if why:
                    host = urlparse(self.name).hostname or self.name
                    raise SourceUnavailable(f"cannot reach {host}: {why}") from error
                if not is_transient(error):
                    raise
                self._close_stream()
                delay = next(delays, None)
                if delay is None:
                    raise SourceUnavailable(f"{self.name}: giving up after {self.policy.attempts} attempts ({error})") from error
                self.retries += 1
                log.warning("%s: %s at byte %d; retrying in %.1fs", self.name, type(error).__name__,
                            self.position, delay)
                time.sleep(delay)

    def read(self, size: int = -1) -> bytes:
        def action() -> bytes:
            assert self._stream is not None
            return self._stream.read(size)

        data = self._with_retry(action)
        self.position += len(data)
        return data

    def _close_stream(self) -> None:
        if self._stream is not None:
            try:
                self._stream.close()
            except Exception:  # noqa: BLE001 - a broken stream may fail to close; it is discarded anyway
                pass
        self._stream = None

    def close(self) -> None:
        self._close_stream()
        super().close()


class _HttpBody(io.RawIOBase):
    """The body of one HTTP response; a body that ends early raises TransientError."""

    def __init__(self, response: requests.Response, expected: int | None):
        self.response = response
        self.remaining = expected

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.response.raw.read(size if size >= 0 else None, decode_content=False)
        if self.remaining is not None:
            self.remaining -= len(data)
            if not data and self.remaining > 0:
                raise TransientError(f"connection closed with {self.remaining} bytes to go")
        return data

    def close(self) -> None:
        self.response.close()
        super().close()


def open_http(url: str, policy: RetryPolicy | None = None, session: requests.Session | None = None) -> ResumableStream:
    """A resumable stream over an HTTP(S) URL (Range requests to resume)."""
    http = session or requests.Session()

    def open_at(offset: int) -> BinaryIO:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        response = http.get(url, headers=headers, stream=True, timeout=(10, 60))
        if response.status_code in RETRY_STATUS:
            response.close()
            raise TransientError(f"HTTP {response.status_code}")
        if response.status_code == 404:
            response.close()
            raise FileNotFoundError(url)
        response.raise_for_status()
        if offset and response.status_code != 206:
            response.close()
            raise IOError(f"{url}: server ignored the Range header; cannot resume")
        length = response.headers.get("Content-Length")
        return _HttpBody(response, int(length) if length else None)

    return ResumableStream(open_at, url, policy)


def open_fsspec(fs, path: str, policy: RetryPolicy | None = None) -> ResumableStream:
    """A resumable stream over any fsspec file (local, s3://, hf://): reopen and seek on transient errors."""

    def open_at(offset: int) -> BinaryIO:
        handle = fs.open(path, "rb", block_size=8 << 20)
        if offset:
            handle.seek(offset)
        return handle

    return ResumableStream(open_at, path, policy)
