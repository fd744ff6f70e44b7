"""The reader `curate.blocks.warc` had on warcio, kept as the reference its fastwarc reader is checked against:
the same framing (gzip members, uncompressed records), warcio's record parsing and `content_stream()` (which
undoes chunked transfer and content encodings)."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator

from warcio.archiveiterator import ArchiveIterator

from curate.blocks.warc import GZIP_MAGIC, decode_html, gzip_members, plain_records


def warcio_rows(data: bytes, max_page_bytes: int = 4_000_000, limit: int | None = None) -> tuple[list[dict], Counter]:
    """The rows (as `WarcReader` makes them, less `dump` and `file_path`) and counts warcio's parsing gives."""
    counts: Counter = Counter()
    rows = []
    framed = gzip_members if data.startswith(GZIP_MAGIC[:2]) else plain_records
    responses = 0
    for member in framed(io.BytesIO(data), max_page_bytes + 65536, counts):
        for record, body in _parse(member, max_page_bytes, counts):
            if limit is not None and responses >= limit:
                return rows, counts
            responses += 1
            row = _row(record, body, max_page_bytes, counts)
            if row is not None:
                rows.append(row)
    return rows, counts


def _parse(member: bytes, max_page_bytes: int, counts: Counter) -> Iterator:
    try:
        for record in ArchiveIterator(io.BytesIO(member), no_record_parse=False, ensure_http_headers=False):
            counts["warc.records"] += 1
            if record.rec_type != "response":
                continue
            try:
                body = record.content_stream().read(max_page_bytes + 1)
            except Exception:  # noqa: BLE001
                counts["warc.malformed_record"] += 1
                continue
            yield record, body
    except Exception:  # noqa: BLE001 - warcio raises many types on malformed headers
        counts["warc.malformed_record"] += 1


def _row(record, body: bytes, max_page_bytes: int, counts: Counter) -> dict | None:
    counts["warc.responses"] += 1
    http = record.http_headers
    if http is None:
        counts["warc.malformed_record"] += 1
        return None
    if http.get_statuscode() != "200":
        counts["warc.http_status"] += 1
        return None
    content_type = http.get_header("Content-Type") or ""
    if content_type and "html" not in content_type.lower():
        counts["warc.not_html"] += 1
        return None
    if len(body) > max_page_bytes:
        counts["warc.too_large"] += 1
        return None
    if b"\x00" in body[:8192]:
        counts["warc.binary"] += 1
        return None
    html = decode_html(body, content_type)
    if html is None:
        counts["warc.undecodable"] += 1
        return None
    record_id = record.rec_headers.get_header("WARC-Record-ID")
    if not record_id:
        counts["warc.missing_record_id"] += 1
        return None
    return {"id": record_id, "url": record.rec_headers.get_header("WARC-Target-URI"),
            "date": record.rec_headers.get_header("WARC-Date"), "html": html,
            "http_tdm_reservation": http.get_header("tdm-reservation"),
            "http_tdm_policy": http.get_header("tdm-policy")}
