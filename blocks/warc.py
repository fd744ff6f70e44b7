"""WARC reading: HTML `response` records of a (gzip-per-record) WARC stream as batches of rows.

Bad input never ends a file: a corrupt or truncated gzip member, a malformed record, a record without a
`WARC-Record-ID`, a non-HTML or binary payload, undecodable bytes or an oversized page is counted by reason and
skipped, and reading resumes at the next gzip member (in an uncompressed WARC, at the next `WARC/1.` line).

Records are parsed with fastwarc one member at a time; the HTTP head, chunked transfer and content encodings
(gzip, deflate, br) are undone here, by warcio's rules (tests/blocks/test_blocks_warc_reference.py holds the
reader to warcio's output).
"""

from __future__ import annotations

import codecs
import io
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import BinaryIO

import pyarrow as pa

GZIP_MAGIC = b"\x1f\x8b\x08"
WARC_VERSION = b"WARC/1."
RECORD_END = b"\r\n\r\n"
MAX_HEADER_BYTES = 1 << 16
CONTENT_LENGTH = re.compile(rb"^content-length:[ \t]*(\d+)[ \t]*$", re.IGNORECASE | re.MULTILINE)
READ_CHUNK = 1 << 20
FEED_CHUNK = 1 << 16  # compressed bytes handed to zlib at a time (its leftover input is copied)
META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_\-]+)""", re.IGNORECASE)
HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([a-zA-Z0-9_\-]+)", re.IGNORECASE)

# Legacy charsets still seen on the web, the candidates of detection when the declared one fails.
WEB_CHARSETS = ("cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "koi8_r", "gb18030",
                "big5", "shift_jis", "euc_jp", "euc_kr", "tis_620", "iso8859_2")

RAW_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("url", pa.string()),
        ("date", pa.string()),
        ("dump", pa.string()),
        ("file_path", pa.string()),
        ("html", pa.string()),
        # TDM Reservation Protocol response headers (`curate.blocks.optout.TdmOptOut`); not kept past stage 1
        ("http_tdm_reservation", pa.string()),
        ("http_tdm_policy", pa.string()),
    ]
)


def gzip_members(raw: BinaryIO, max_bytes: int, counts: Counter) -> Iterator[bytes]:
    """Decompressed gzip members of `raw`; corrupt ones are counted and skipped by resyncing on the gzip magic.

    A member's compressed bytes stay in the buffer until it ends, so when it turns out to be corrupt (zlib may
    read into the next members before it notices) the search for the next header starts right after its
    first byte: no later member is lost."""
    buffer = bytearray()
    exhausted = False

    def refill() -> bool:
        nonlocal exhausted
        chunk = b"" if exhausted else raw.read(READ_CHUNK)
        exhausted = not chunk
        buffer.extend(chunk)
        return bool(chunk)

    def resync() -> None:
        """Drop the buffer's first byte and everything up to the next gzip member header."""
        start = 1
        while (index := buffer.find(GZIP_MAGIC, start)) < 0:
            keep = len(GZIP_MAGIC) - 1  # a header split across reads
            del buffer[:max(len(buffer) - keep, 0)]
            start = 0
            if not refill():
                buffer.clear()
                return
        del buffer[:index]

    while True:
        while len(buffer) < len(GZIP_MAGIC) and refill():
            pass
        if not buffer:
            return
        if not buffer.startswith(GZIP_MAGIC):
            counts["warc.corrupt_gzip"] += 1
            resync()
            continue
        decompressor = zlib.decompressobj(31)
        fed = 0  # bytes of the buffer the decompressor has consumed
        parts: list[bytes] = []
        size = 0
        try:
            while not decompressor.eof:
                if fed >= len(buffer) and not refill():
                    counts["warc.truncated"] += 1
                    return
                with memoryview(buffer) as view, view[fed:fed + FEED_CHUNK] as chunk:  # no copy of the buffer
                    data = decompressor.decompress(chunk, READ_CHUNK)
                    given = len(chunk)
                fed += given - len(decompressor.unused_data if decompressor.eof else decompressor.unconsumed_tail)
                size += len(data)
                if size > max_bytes:
                    parts.clear()  # keep reading to the member's end, holding nothing
                elif data:
                    parts.append(data)
        except zlib.error:
            counts["warc.corrupt_gzip"] += 1
            resync()
            continue
        del buffer[:fed]
        if size > max_bytes:
            counts["warc.too_large"] += 1
            continue
        yield b"".join(parts)


def plain_records(raw: BinaryIO, max_bytes: int, counts: Counter) -> Iterator[bytes]:
    """The records of an uncompressed WARC, each cut where its `Content-Length` says it ends. A header that does
    not parse, or a record that does not end there with `\\r\\n\\r\\n`, is counted as `warc.malformed_record`
    and reading resumes at the next `WARC/1.` version line, as the gzip reader resumes at the next member; a
    record over `max_bytes` is skipped the same way, without being held."""
    buffer = bytearray()

    def fill(size: int) -> bool:
        while len(buffer) < size:
            chunk = raw.read(READ_CHUNK)
            if not chunk:
                return False
            buffer.extend(chunk)
        return True

    def resync() -> None:
        """Drop the buffer's first byte and everything up to the next `WARC/1.` (a record's first line; damage
        may have eaten the line break before it)."""
        start = 1
        while (index := buffer.find(WARC_VERSION, start)) < 0:
            keep = len(WARC_VERSION) - 1  # a version line split across reads
            del buffer[:max(len(buffer) - keep, 0)]
            start = 0
            if not fill(len(buffer) + 1):
                buffer.clear()
                return
        del buffer[:index]

    while True:
        fill(len(WARC_VERSION))
        while buffer[:1] in (b"\r", b"\n"):  # blank lines between records
            del buffer[:1]
            fill(len(WARC_VERSION))
        if not buffer:
            return
        header_end = buffer.find(RECORD_END)
        while header_end < 0 and len(buffer) < MAX_HEADER_BYTES and fill(len(buffer) + 1):
            header_end = buffer.find(RECORD_END)
        length = CONTENT_LENGTH.search(bytes(buffer[:header_end])) if header_end > 0 else None
        if not buffer.startswith(WARC_VERSION) or length is None:
            if header_end < 0 and len(buffer) < MAX_HEADER_BYTES and buffer.startswith(WARC_VERSION):
                counts["warc.truncated"] += 1
                return
            counts["warc.malformed_record"] += 1
            resync()
            continue
        end = header_end + len(RECORD_END) + int(length[1])
        if end > max_bytes:  # dropped on the way to the next record, never held (its length may be wrong)
            counts["warc.too_large"] += 1
            resync()
            continue
        if not fill(end + len(RECORD_END)):
            counts["warc.truncated"] += 1
            return
        if buffer[end:end + len(RECORD_END)] != RECORD_END:
            counts["warc.malformed_record"] += 1  # a wrong length: the record does not end where it says
            resync()
            continue
        record = bytes(buffer[:end + len(RECORD_END)])
        del buffer[:end + len(RECORD_END)]
        yield record


def decode_html(body: bytes, content_type: str) -> str | None:
    """Body bytes as text: declared charset, then `<meta charset>`, then UTF-8, then detection among the legacy
    web charsets, then windows-1252; None if nothing decodes the bytes."""
    decoded = _decoded(body, content_type)
    return decoded[0] if decoded else None


def html_utf8(body: bytes, content_type: str) -> bytes | None:
    """The text `decode_html` gives, as UTF-8 bytes: the body itself when it was UTF-8 (no round trip through
    a Python string), else the decoded text encoded; None if nothing decodes the bytes."""
    decoded = _decoded(body, content_type)
    if decoded is None:
        return None
    text, charset = decoded
    return body if _is_utf8(charset) else text.encode("utf-8")


def _decoded(body: bytes, content_type: str) -> tuple[str, str] | None:
    """The text and the charset that decoded it (see `decode_html`)."""
    candidates = []
    match = HEADER_CHARSET.search(content_type or "")
    if match:
        candidates.append(match.group(1).decode() if isinstance(match.group(1), bytes) else match.group(1))
    meta = META_CHARSET.search(body[:4096])
    if meta:
        candidates.append(meta.group(1).decode("ascii", "ignore"))
    candidates.append("utf-8")
    for charset in candidates:
        try:
            return body.decode(charset), charset
        except (UnicodeDecodeError, LookupError):
            continue
    from charset_normalizer import from_bytes

    best = from_bytes(body[:200_000], cp_isolation=list(WEB_CHARSETS)).best()
    for charset in ([best.encoding] if best is not None and best.encoding else []) + ["cp1252"]:
        try:
            return body.decode(charset), charset  # cp1252 last: the WHATWG default for undeclared legacy pages
        except (UnicodeDecodeError, LookupError):
            continue
    return None


def _is_utf8(charset: str) -> bool:
    return codecs.lookup(charset).name == "utf-8"


DECODE_BLOCK = 16384  # raw bytes decoded at a time; a failure in the first block means "not encoded after all"


class MalformedRecord(Exception):
    """A record whose HTTP head does not parse (the reader counts it as `warc.malformed_record`)."""


@dataclass
class Response:
    """One `response` record: its id, URL and date, HTTP status code (None: no HTTP response in it), HTTP headers
    and the payload as sent (still chunked or content-encoded); `body(limit)` undoes those encodings."""

    warc: dict[str, str | None]
    status: str | None
    http: dict[str, str]
    payload: bytes

    def body(self, limit: int) -> bytes:
        """The payload without its transfer and content encodings, at most `limit` bytes (as warcio's
        `content_stream()` gives it: an encoding that fails on its first block is taken as absent)."""
        encoding = (self.http.get("content-encoding") or "").lower() or None
        decoder = _Decoder(encoding if encoding in _decompressors() else None)
        if self.http.get("transfer-encoding") == "chunked":
            return _dechunk(self.payload, decoder, limit)
        if decoder.decompressor is None:
            return self.payload[:limit]
        return _decode_blocks(self.payload, 0, decoder, [], 0, limit)


@cache
def _decompressors() -> dict:
    """Content codings undone (br when `brotli` is installed), each a factory of a fresh decompressor."""
    factories = {"gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS), "deflate": zlib.decompressobj}
    try:
        import brotli

        factories["br"] = brotli.Decompressor
    except ImportError:  # pragma: no cover - fastwarc installs brotli
        pass
    return factories


class _Decoder:
    """A content decoder fed block by block: a failure before any output means the bytes were not encoded
    (deflate first retries as raw deflate), a later failure drops that block, as warcio does."""

    def __init__(self, encoding: str | None):
        self.encoding = encoding
        self.decompressor = _decompressors()[encoding]() if encoding else None
        self.produced = 0

    def feed(self, data: bytes) -> bytes:
        if self.decompressor is None or not data:
            return data
        try:
            out = self.decompressor.decompress(data) if self.encoding != "br" else self.decompressor.process(data)
        except Exception:  # noqa: BLE001 - zlib.error, brotli.error
            if self.produced:
                return b""
            if self.encoding == "deflate":
                self.encoding, self.decompressor = "deflate_raw", zlib.decompressobj(-zlib.MAX_WBITS)
                return self.feed(data)
            self.decompressor = None
            return data
        self.produced += len(out)
        return out

    def member_ended(self) -> bool:
        """A zlib stream ended with bytes after it: nothing past it is read."""
        return bool(getattr(self.decompressor, "unused_data", b""))


def _decode_blocks(raw: bytes, start: int, decoder: _Decoder, parts: list[bytes], size: int, limit: int) -> bytes:
    """`raw[start:]` through `decoder` in `DECODE_BLOCK`s after the already decoded `parts`, up to `limit`."""
    for at in range(start, len(raw), DECODE_BLOCK):
        if size >= limit or decoder.member_ended():
            break
        out = decoder.feed(raw[at:at + DECODE_BLOCK])
        parts.append(out)
        size += len(out)
    return b"".join(parts)[:limit]


def _dechunk(raw: bytes, decoder: _Decoder, limit: int) -> bytes:
    """Undo chunked transfer encoding (each chunk through `decoder`); from a chunk header that does not parse
    on, the rest is taken as not chunked, as warcio takes it."""
    parts: list[bytes] = []
    size = position = 0
    while size < limit and position < len(raw):
        newline = raw.find(b"\n", position, position + 64)
        line_end = position + 64 if newline < 0 else newline + 1
        line = raw[position:line_end]
        position = min(line_end, len(raw))
        try:
            if not line.endswith(b"\r\n"):
                raise ValueError(line)
            chunk_size = int(line[:-2].split(b";")[0], 16)
            if chunk_size > 1 << 31:
                raise ValueError(line)
        except ValueError:
            parts.append(decoder.feed(line))
            return _decode_blocks(raw, position, decoder, parts, size + len(parts[-1]), limit)
        if chunk_size == 0:
            if raw[position:position + 2] != b"\r\n":
                parts.append(decoder.feed(line))
                return _decode_blocks(raw, position + 2, decoder, parts, size + len(parts[-1]), limit)
            break
        chunk = raw[position:position + chunk_size]
        position += len(chunk)
        if len(chunk) == chunk_size:
            terminator = raw[position:position + 2]
            position += 2
            if terminator != b"\r\n":
                parts.append(decoder.feed(line + chunk))
                return _decode_blocks(raw, position, decoder, parts, size + len(parts[-1]), limit)
        parts.append(decoder.feed(chunk))
        size += len(parts[-1])
    return b"".join(parts)[:limit]


def _header_lines(block: bytes) -> Iterator[tuple[str, int]]:
    """The lines of an HTTP head, right-stripped (UTF-8, else ISO-8859-1), each with where it ends; then ""
    at the block's end."""
    position = 0
    while position < len(block):
        newline = block.find(b"\n", position)
        end = len(block) if newline < 0 else newline + 1
        raw = block[position:end]
        position = end
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw.decode("iso-8859-1")
        yield line.rstrip(), end
    while True:
        yield "", len(block)


def http_response(block: bytes) -> tuple[str, dict[str, str], bytes]:
    """Status code, headers (lower-case names, the first of each; continuation lines appended) and payload of
    an HTTP response block, parsed as warcio parses it (the protocol is not checked). Raises MalformedRecord on
    an empty block."""
    if not block:
        raise MalformedRecord("empty HTTP block")
    lines = _header_lines(block)
    status_line, end = next(lines)
    if not status_line:
        return "", {}, block[end:]
    _, _, status = status_line.partition(" ")
    status = status.strip().split(" ", 1)[0]
    headers: dict[str, str] = {}
    line, end = next(lines)
    while line:
        name, colon, value = line.partition(":")
        value = value.lstrip()
        next_line, end = next(lines)
        while next_line.startswith((" ", "\t")):
            value += next_line
            next_line, end = next(lines)
        if colon:
            headers.setdefault(name.rstrip(" \t").lower(), value)
        line = next_line
    return status, headers, block[end:]


def responses(raw: BinaryIO, max_bytes: int, counts: Counter) -> Iterator[Response]:
    """The `response` records of a WARC stream, gzip-per-record or uncompressed, parsed with fastwarc one
    member (or framed record) at a time; every record counts as `warc.records`, one whose HTTP head does not
    parse as `warc.malformed_record` (with the rest of its member, as warcio loses it)."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    head = raw.read(len(GZIP_MAGIC))
    stream: BinaryIO = _Prefixed(head, raw)
    framed = gzip_members if head.startswith(GZIP_MAGIC[:2]) else plain_records
    for member in framed(stream, max_bytes, counts):
        try:
            for record in ArchiveIterator(io.BytesIO(member), parse_http=False, auto_decode="none",
                                          stream_detect=False, fsspec_args=False):
                counts["warc.records"] += 1
                if record.record_type != WarcRecordType.response:
                    continue
                warc = record.headers
                uri = (warc.get("WARC-Target-URI") or "").strip("<>")
                block = record.reader.read()
                ids = {"id": warc.get("WARC-Record-ID"), "url": uri, "date": warc.get("WARC-Date")}
                if not uri.startswith(("http:", "https:")) or not record.content_length:
                    yield Response(ids, None, {}, b"")  # no HTTP response to read
                    continue
                try:
                    status, http, payload = http_response(block)
                except MalformedRecord:
                    counts["warc.malformed_record"] += 1
                    break  # as warcio: the rest of a member whose record does not parse is lost
                yield Response(ids, status, http, payload)
        except OSError:  # fastwarc on a record it cannot frame
            counts["warc.malformed_record"] += 1


@dataclass
class WarcReader:
    """Reads HTML `response` records into batches with `id, url, date, dump, file_path, html` and the TDMRep
    response headers `http_tdm_reservation`, `http_tdm_policy` (null when not sent)."""

    batch_size: int = 256
    max_page_bytes: int = 4_000_000
    limit: int | None = None

    def read(self, raw: BinaryIO, file_path: str, dump: str, counts: Counter) -> Iterator[pa.Table]:
        columns: dict[str, list] = {name: [] for name in RAW_SCHEMA.names}
        taken = 0
        for response in responses(raw, self.max_page_bytes + 65536, counts):
            if self.limit is not None and taken >= self.limit:
                break
            taken += 1
            counts["warc.responses"] += 1
            html = self._html(response, counts)
            if html is None:
                continue
            for name, value in (("id", response.warc["id"]), ("url", response.warc["url"]),
                                ("date", response.warc["date"]), ("html", html),
                                ("http_tdm_reservation", response.http.get("tdm-reservation")),
                                ("http_tdm_policy", response.http.get("tdm-policy"))):
                columns[name].append(value)
            if len(columns["id"]) >= self.batch_size:
                yield self._batch(columns, file_path, dump)
                columns = {name: [] for name in RAW_SCHEMA.names}
        if columns["id"]:
            yield self._batch(columns, file_path, dump)

    @staticmethod
    def _batch(columns: dict[str, list], file_path: str, dump: str) -> pa.Table:
        rows = len(columns["id"])
        columns["dump"], columns["file_path"] = [dump] * rows, [file_path] * rows
        arrays = {name: pa.array(columns[name], pa.string()) for name in RAW_SCHEMA.names if name != "html"}
        arrays["html"] = pa.array(columns["html"], pa.binary()).cast(pa.string())  # UTF-8 bytes: no re-encoding
        return pa.table({name: arrays[name] for name in RAW_SCHEMA.names}, schema=RAW_SCHEMA)

    def _html(self, response: Response, counts: Counter) -> bytes | None:
        """The page's text as UTF-8, or None with the reason counted."""
        if response.status is None:
            counts["warc.malformed_record"] += 1
            return None
        if response.status != "200":
            counts["warc.http_status"] += 1
            return None
        content_type = response.http.get("content-type") or ""
        if content_type and "html" not in content_type.lower():
            counts["warc.not_html"] += 1
            return None
        body = response.body(self.max_page_bytes + 1)
        if len(body) > self.max_page_bytes:
            counts["warc.too_large"] += 1
            return None
        if b"\x00" in body[:8192]:
            counts["warc.binary"] += 1
            return None
        html = html_utf8(body, content_type)
        if html is None:
            counts["warc.undecodable"] += 1
            return None
        if not response.warc["id"]:
            counts["warc.missing_record_id"] += 1  # the id is every stage's join key: no id, no document
            return None
        return html


class _Prefixed(io.RawIOBase):
    """A stream with some already-read bytes put back in front."""

    def __init__(self, prefix: bytes, stream: BinaryIO):
        self._prefix = prefix
        self._stream = stream

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            if size < 0:
                data, self._prefix = self._prefix + self._stream.read(), b""
                return data
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            if len(data) < size:
                data += self._stream.read(size - len(data))
            return data
        return self._stream.read(size)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
