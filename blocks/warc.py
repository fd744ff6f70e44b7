"""WARC reading: HTML `response` records of a (gzip-per-record) WARC stream as batches of rows.

Bad input never ends a file: a corrupt or truncated gzip member, a malformed record, a record without a
`WARC-Record-ID`, a non-HTML or binary payload, undecodable bytes or an oversized page is counted by reason and
skipped, and reading resumes at the next gzip member (in an uncompressed WARC, at the next `WARC/1.` line).
"""

from __future__ import annotations

import io
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa
from warcio.archiveiterator import ArchiveIterator

GZIP_MAGIC = b"\x1f\x8b\x08"
WARC_VERSION = b"WARC/1."
RECORD_END = b"\r\n\r\n"
MAX_HEADER_BYTES = 1 << 16
CONTENT_LENGTH = re.compile(rb"^content-length:[ \t]*(\d+)[ \t]*$", re.IGNORECASE | re.MULTILINE)
READ_CHUNK = 1 << 20
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
                chunk = bytes(buffer[fed:fed + READ_CHUNK])
                data = decompressor.decompress(chunk, READ_CHUNK)
                fed += len(chunk) - len(decompressor.unused_data if decompressor.eof else decompressor.unconsumed_tail)
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
            return body.decode(charset)
        except (UnicodeDecodeError, LookupError):
            continue
    from charset_normalizer import from_bytes

    best = from_bytes(body[:200_000], cp_isolation=list(WEB_CHARSETS)).best()
    for charset in ([best.encoding] if best is not None and best.encoding else []) + ["cp1252"]:
        try:
            return body.decode(charset)  # cp1252 last: the WHATWG default for undeclared legacy pages
        except (UnicodeDecodeError, LookupError):
            continue
    return None


@dataclass
class WarcReader:
    """Reads HTML `response` records into batches with `id, url, date, dump, file_path, html` and the TDMRep
    response headers `http_tdm_reservation`, `http_tdm_policy` (null when not sent)."""

    batch_size: int = 256
    max_page_bytes: int = 4_000_000
    limit: int | None = None

    def read(self, raw: BinaryIO, file_path: str, dump: str, counts: Counter) -> Iterator[pa.Table]:
        rows: list[dict] = []
        responses = 0
        for record_bytes in self._records(raw, counts):
            if self.limit is not None and responses >= self.limit:
                break
            responses += 1
            row = self._row(record_bytes, file_path, dump, counts)
            if row is not None:
                rows.append(row)
                if len(rows) >= self.batch_size:
                    yield pa.Table.from_pylist(rows, schema=RAW_SCHEMA)
                    rows = []
        if rows:
            yield pa.Table.from_pylist(rows, schema=RAW_SCHEMA)

    def _records(self, raw: BinaryIO, counts: Counter) -> Iterator:
        """Yield warcio `response` records, one parsed gzip member at a time."""
        head = raw.read(len(GZIP_MAGIC))
        stream: BinaryIO = _Prefixed(head, raw)
        if not head.startswith(GZIP_MAGIC[:2]):
            for record in plain_records(stream, self.max_page_bytes + 65536, counts):
                yield from self._parse(io.BytesIO(record), counts)
            return
        for member in gzip_members(stream, self.max_page_bytes + 65536, counts):
            yield from self._parse(io.BytesIO(member), counts)

    def _parse(self, stream: BinaryIO, counts: Counter) -> Iterator:
        try:
            for record in ArchiveIterator(stream, no_record_parse=False, ensure_http_headers=False):
                counts["warc.records"] += 1
                if record.rec_type != "response":
                    continue
                try:
                    body = record.content_stream().read(self.max_page_bytes + 1)
                except Exception:  # noqa: BLE001 - any parse failure of one record is counted, never fatal
                    counts["warc.malformed_record"] += 1
                    continue
                yield record, body
        except Exception:  # noqa: BLE001 - warcio raises many types on malformed headers
            counts["warc.malformed_record"] += 1

    def _row(self, item, file_path: str, dump: str, counts: Counter) -> dict | None:
        record, body = item
        counts["warc.responses"] += 1
        http = record.http_headers
        if http is None:
            counts["warc.malformed_record"] += 1
            return None
        status = http.get_statuscode()
        if status != "200":
            counts["warc.http_status"] += 1
            return None
        content_type = http.get_header("Content-Type") or ""
        if content_type and "html" not in content_type.lower():
            counts["warc.not_html"] += 1
            return None
        if len(body) > self.max_page_bytes:
            counts["warc.too_large"] += 1
            return None
        if b"\x00" in body[:8192]:
            counts["warc.binary"] += 1
            return None
        html = decode_html(body, content_type)
        if html is None:
            counts["warc.undecodable"] += 1
            return None
        headers = record.rec_headers
        record_id = headers.get_header("WARC-Record-ID")
        if not record_id:
            counts["warc.missing_record_id"] += 1  # the id is every stage's join key: no id, no document
            return None
        return {
            "id": record_id,
            "url": headers.get_header("WARC-Target-URI"),
            "date": headers.get_header("WARC-Date"),
            "dump": dump,
            "file_path": file_path,
            "html": html,
            "http_tdm_reservation": http.get_header("tdm-reservation"),
            "http_tdm_policy": http.get_header("tdm-policy"),
        }


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
