"""The fastwarc reader against warcio's (tests/blocks/warcio_reference.py): the same rows, bytes and counts by
reason on every WARC in ../shared/data/warc, the test mirror's WARCs with their planted bad records, damaged
files, and payloads sent chunked and content-encoded (which Common Crawl's own WARCs no longer carry)."""

from __future__ import annotations

import gzip
import io
import zlib
from collections import Counter

import brotli
import pytest
from mirror import Record, documents, page
from test_blocks_warc import _warc, finnish_records
from warcio_reference import warcio_rows

from curate.blocks.warc import Response, WarcReader, http_response

HTML = page(" ".join(documents("fin", 3, 5)), "fi", "Otsikko").encode()


def ours(data: bytes, **settings) -> tuple[list[dict], Counter]:
    counts: Counter = Counter()
    rows = []
    for batch in WarcReader(**settings).read(io.BytesIO(data), "f.warc.gz", "CC-MAIN-2024-22", counts):
        rows += [{k: v for k, v in row.items() if k not in ("dump", "file_path")} for row in batch.to_pylist()]
    return rows, counts


def assert_same(data: bytes, **settings) -> tuple[list[dict], Counter]:
    expected_rows, expected_counts = warcio_rows(data, **settings)
    rows, counts = ours(data, **settings)
    assert counts == expected_counts
    assert rows == expected_rows
    return rows, counts


def chunked(body: bytes, size: int = 1000) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                    for i in range(0, len(body), size)) + b"0\r\n\r\n"


def test_every_shared_warc(shared):
    paths = sorted((shared / "data/warc").iterdir())
    assert len(paths) >= 3
    for path in paths:
        assert_same(path.read_bytes())
    rows, counts = assert_same((shared / "data/warc/CC-MAIN-2020-34-resiliparse.warc.gz").read_bytes())
    assert counts["warc.records"] == 50 and len(rows) == 16


def test_every_mirror_warc_with_its_planted_bad_records(mirror):
    totals: Counter = Counter()
    for paths in mirror.crawls.values():
        for relative in paths:
            totals += assert_same((mirror.root / relative).read_bytes())[1]
    for reason, planted in mirror.planted.items():
        assert totals[reason] >= planted, reason


def test_damaged_files():
    data = _warc(finnish_records(6), corrupt_after={2})
    assert assert_same(data)[1]["warc.corrupt_gzip"] >= 1
    assert assert_same(data[: int(len(data) * 0.7)])[1]["warc.truncated"] == 1
    plain = gzip.decompress(_warc(finnish_records(4)))
    assert len(assert_same(plain, limit=3)[0]) == 3
    start = plain.index(b"WARC-Record-ID: <urn:uuid:r1>")
    stripped = plain[:start] + plain[plain.index(b"\r\n", start) + 2:]
    assert assert_same(gzip.compress(stripped))[1]["warc.missing_record_id"] == 1  # 3 records in one member
    assert assert_same(plain, max_page_bytes=100)[1]["warc.too_large"] == 4


def encoded(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body, mtime=0)
    if encoding == "deflate":
        return zlib.compress(body)
    if encoding == "deflate-raw":
        compressor = zlib.compressobj(wbits=-15)
        return compressor.compress(body) + compressor.flush()
    return brotli.compress(body)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "deflate-raw", "br"])
@pytest.mark.parametrize("transfer", ["identity", "chunked"])
def test_content_and_transfer_encodings_are_undone(encoding, transfer):
    payload = encoded(HTML, encoding)
    headers = [("Content-Encoding", encoding.replace("-raw", ""))]
    if transfer == "chunked":
        payload = chunked(payload)
        headers.append(("Transfer-Encoding", "chunked"))
    data = _warc([Record("https://a.fi/x", payload, headers=tuple(headers), record_id="<urn:uuid:e>")])
    rows, _ = ours(data) if encoding == "br" else assert_same(data)  # warcio 1.7 fails on brotli 1.2's API
    assert rows[0]["html"] == HTML.decode()


def test_encodings_that_are_not_what_they_claim():
    """warcio's rules: a body that is not chunked after all, or not compressed after all, is taken as it is (br
    too: `test_a_body_that_is_not_brotli_after_all`); a
    chunk without its terminator ends the chunking there; a compressed stream that breaks after it began loses
    the broken block; bytes after a gzip member are not read."""
    big = page(" ".join(documents("fin", 60, 9)), "fi", "Iso").encode()
    noisy = gzip.compress(big + bytes(range(256)) * 400, mtime=0)
    cases = [
        (HTML, (("Transfer-Encoding", "chunked"),)),
        (HTML, (("Content-Encoding", "gzip"),)),
        (HTML, (("Content-Encoding", "deflate"),)),
        (HTML, (("Content-Encoding", "compress"),)),
        (chunked(HTML)[:-7] + b"xx" + chunked(HTML)[-5:], (("Transfer-Encoding", "chunked"),)),
        (chunked(HTML, 500).replace(b"\r\n", b"\n", 3), (("Transfer-Encoding", "chunked"),)),
        (chunked(HTML)[:-5] + b"0\r\nXX", (("Transfer-Encoding", "chunked"),)),
        (chunked(HTML)[: len(HTML) // 2], (("Transfer-Encoding", "chunked"),)),
        (chunked(HTML), (("Transfer-Encoding", "Chunked"),)),
        (gzip.compress(HTML, mtime=0) + b"trailing bytes", (("Content-Encoding", "GZIP"),)),
        (noisy[:20000] + bytes(500) + noisy[20500:], (("Content-Encoding", "gzip"),)),
        (chunked(gzip.compress(HTML, mtime=0), 100), (("Transfer-Encoding", "chunked"), ("Content-Encoding", "gzip"))),
    ]
    records = [Record(f"https://a.fi/{i}", body, headers=headers, record_id=f"<urn:uuid:c{i}>")
               for i, (body, headers) in enumerate(cases)]
    rows, _ = assert_same(_warc(records))
    assert len(rows) == len(cases)


def test_a_body_that_is_not_brotli_after_all():
    rows, counts = ours(_warc([Record("https://a.fi/b", HTML, headers=(("Content-Encoding", "br"),))]))
    assert rows[0]["html"] == HTML.decode() and counts["warc.responses"] == 1


def test_http_heads_parsed_as_warcio_parses_them():
    records = [
        Record("https://a.fi/tdm", HTML, record_id="<urn:uuid:t>",
               headers=(("TDM-Reservation", "1"), ("tdm-policy", "https://a.fi/policy"), ("tdm-reservation", "0"))),
        Record("https://a.fi/fold", HTML, record_id="<urn:uuid:f>", headers=(("tdm-policy", "https://a.fi/abc"),)),
        Record("https://a.fi/protocol", HTML, record_id="<urn:uuid:p>"),
        Record("https://a.fi/blank", HTML, record_id="<urn:uuid:b>"),
        Record("https://a.fi/after", HTML, record_id="<urn:uuid:a>"),
    ]
    plain = gzip.decompress(_warc(records))
    plain = plain.replace(b": https://a.fi/abc", b":\r\n\thttps://a.fi/a")  # a continuation line, the same length
    protocol = plain.index(b"HTTP/1.1 200", plain.index(b"<urn:uuid:p>"))
    plain = plain[:protocol] + b"HTTX" + plain[protocol + 4:]  # the protocol is not checked
    plain = plain.replace(b"WARC-Target-URI: https://a.fi/after", b"WARC-Target-URI: dns:a.fi")  # no HTTP in it
    blank = plain.index(b"HTTP/1.1 200 OK\r\n", plain.index(b"<urn:uuid:b>"))
    plain = plain[:blank] + b" " * 15 + plain[blank + 15:]  # an empty status line: no status
    for data in (plain, gzip.compress(plain)):
        rows, counts = assert_same(data)
        assert counts["warc.malformed_record"] == 1 and counts["warc.http_status"] == 1
    assert [row["id"] for row in rows] == ["<urn:uuid:t>", "<urn:uuid:f>", "<urn:uuid:p>"]
    assert rows[0]["http_tdm_reservation"] == "1" and rows[1]["http_tdm_policy"] == "\thttps://a.fi/a"


def test_http_response_head():
    block = b"HTTP/1.1 301 Moved\r\nLocation: /x\r\nX-A: 1\r\n\t2\r\nBroken line\r\nLocation: /y\r\n\r\nbody"
    assert http_response(block) == ("301", {"location": "/x", "x-a": "1\t2"}, b"body")
    assert http_response(b"\r\nrest") == ("", {}, b"rest")
    response = Response({"id": "i", "url": "u", "date": "d"}, "200", {"content-encoding": "gzip"},
                        gzip.compress(HTML, mtime=0))
    assert response.body(10) == HTML[:10] and response.body(10 ** 6) == HTML
