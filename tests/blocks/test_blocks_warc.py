"""The WARC reader on real Common Crawl excerpts and on damaged input."""

from __future__ import annotations

import gzip
import io
import tempfile
from collections import Counter
from pathlib import Path

from mirror import Record, documents, page, write_warc

from curate.blocks.warc import WarcReader


def read_all(data: bytes, **settings) -> tuple[list[dict], Counter]:
    counts: Counter = Counter()
    rows = []
    for batch in WarcReader(**settings).read(io.BytesIO(data), "f.warc.gz", "CC-MAIN-2024-22", counts):
        rows += batch.to_pylist()
    return rows, counts


def test_real_cc_excerpt_gives_every_html_response(shared):
    rows, counts = read_all((shared / "data/warc/CC-MAIN-2020-34-resiliparse.warc.gz").read_bytes())
    assert counts["warc.responses"] == 16
    assert len(rows) + counts["warc.not_html"] + counts["warc.http_status"] == 16
    first = rows[0]
    assert first["url"] == "http://003338.cn/l41/481397.html"
    assert first["id"] == "<urn:uuid:c4c112a5-3503-4483-abf8-51a0dd86dd53>"
    assert first["date"] == "2020-08-08T17:27:41Z"
    assert first["dump"] == "CC-MAIN-2024-22" and "<html" in first["html"].lower()


def test_whirlwind_excerpt_skips_request_and_metadata_records(shared):
    rows, counts = read_all((shared / "data/warc/CC-MAIN-2024-22-whirlwind.warc.gz").read_bytes())
    assert counts["warc.records"] == 4 and counts["warc.responses"] == 1
    assert [r["url"] for r in rows] == ["https://an.wikipedia.org/wiki/Escopete"]


def _warc(records: list[Record], **kwargs) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "x.warc.gz"
        write_warc(target, records, **kwargs)
        return target.read_bytes()


def finnish_records(n: int) -> list[Record]:
    return [Record(f"https://a.fi/{i}", page(t, "fi", f"T{i}").encode(), record_id=f"<urn:uuid:r{i}>")
            for i, t in enumerate(documents("fin", n, 7))]


def test_corrupt_gzip_member_is_skipped_and_the_rest_is_read():
    data = _warc(finnish_records(6), corrupt_after={2})
    rows, counts = read_all(data)
    assert counts["warc.corrupt_gzip"] >= 1
    assert [r["id"] for r in rows] == [f"<urn:uuid:r{i}>" for i in (0, 1, 3, 4, 5)]


def test_truncated_file_keeps_every_complete_record():
    data = _warc(finnish_records(5))
    rows, counts = read_all(data[: int(len(data) * 0.7)])
    assert counts["warc.truncated"] == 1
    assert 2 <= len(rows) <= 4 and rows[0]["id"] == "<urn:uuid:r0>"


def test_garbage_between_members_is_resynced():
    data = _warc(finnish_records(2))
    first_end = data.index(b"\x1f\x8b\x08", 10)
    damaged = data[:first_end] + b"garbage bytes \x00\xff" * 10 + data[first_end:]
    rows, counts = read_all(damaged)
    assert [r["id"] for r in rows] == ["<urn:uuid:r0>", "<urn:uuid:r1>"]
    assert counts["warc.corrupt_gzip"] == 1


def test_bad_payloads_are_counted_by_reason():
    good = finnish_records(1)
    bad = [
        Record("https://x.fi/png", b"\x89PNG\r\n" + bytes(range(256)), "image/png"),
        Record("https://x.fi/nul", b"\x00\x01" * 100, "text/html"),
        Record("https://x.fi/404", b"<html></html>", status="404 Not Found"),
        Record("https://x.fi/huge", b"<html><body>" + b"a" * 300_000 + b"</body></html>"),
    ]
    rows, counts = read_all(_warc(good + bad), max_page_bytes=100_000)
    assert len(rows) == 1
    assert {k: counts[k] for k in ("warc.not_html", "warc.binary", "warc.http_status", "warc.too_large")} == {
        "warc.not_html": 1, "warc.binary": 1, "warc.http_status": 1, "warc.too_large": 1}


def test_wrong_declared_charset_falls_back_to_detection():
    text = "Hyvää päivää, tämä on pöytä ja äiti söi jäätelöä. " * 20
    record = Record("https://x.fi/latin", page(text, "fi", "Ä").encode("cp1252"), "text/html; charset=utf-8")
    rows, counts = read_all(_warc([record]))
    assert len(rows) == 1 and "Hyvää päivää" in rows[0]["html"]


def test_uncompressed_warc_and_limit():
    data = gzip.decompress(_warc(finnish_records(4)))
    rows, _ = read_all(data, limit=3)
    assert [r["id"] for r in rows] == ["<urn:uuid:r0>", "<urn:uuid:r1>", "<urn:uuid:r2>"]


def test_a_corrupt_member_read_across_many_reads_loses_no_later_record(monkeypatch):
    """A member cut half-way and followed by the next one, read 512 bytes at a time: zlib reads on into the
    next member before it notices; the search for the next header restarts inside the damaged member."""
    from curate.blocks import warc

    monkeypatch.setattr(warc, "READ_CHUNK", 512)
    data = _warc(finnish_records(6))
    starts = [i for i in range(len(data)) if data.startswith(b"\x1f\x8b\x08", i)]
    member = next(i for i, start in enumerate(starts) if b"r2>" in gzip.decompress(data[start:starts[i + 1]]))
    cut = starts[member] + (starts[member + 1] - starts[member]) // 2
    rows, counts = read_all(data[:cut] + data[starts[member + 1]:])  # member 2 ends half-way, then member 3
    assert [r["id"] for r in rows] == [f"<urn:uuid:r{i}>" for i in (0, 1, 3, 4, 5)]
    assert counts["warc.corrupt_gzip"] + counts["warc.truncated"] >= 1


def test_garbage_longer_than_a_read_is_resynced(monkeypatch):
    """The next header lies several reads past the damage (an earlier reader lost every later record here)."""
    from curate.blocks import warc

    monkeypatch.setattr(warc, "READ_CHUNK", 64)
    data = _warc(finnish_records(3))
    first_end = data.index(b"\x1f\x8b\x08", 10)
    rows, counts = read_all(data[:first_end] + bytes(range(1, 31)) * 100 + data[first_end:])
    assert [r["id"] for r in rows] == ["<urn:uuid:r0>", "<urn:uuid:r1>", "<urn:uuid:r2>"]
    assert counts["warc.corrupt_gzip"] == 1


def _plain_warc(n: int) -> bytes:
    return gzip.decompress(_warc(finnish_records(n)))


def test_uncompressed_warc_resyncs_after_a_malformed_header(monkeypatch):
    """One broken header in a `.warc` lost the rest of the file; reading now resumes at the next `WARC/1.`
    line, also when the damage and the next record lie several reads apart."""
    from curate.blocks import warc

    monkeypatch.setattr(warc, "READ_CHUNK", 256)
    data = _plain_warc(5)
    second = data.index(b"WARC/1.", 10)
    broken = data[:second] + b"WARC/1.0\r\nContent-Length: banana\r\n\r\n" + bytes(range(1, 31)) * 40 + data[second:]
    third = broken.rindex(b"WARC/1.", 0, broken.index(b"<urn:uuid:r2>"))
    broken = broken[:third] + b"garbage " + broken[third + 8:]  # record 2's header: no version line
    rows, counts = read_all(broken)
    assert [r["id"] for r in rows] == [f"<urn:uuid:r{i}>" for i in (0, 1, 3, 4)]
    assert counts["warc.malformed_record"] == 2


def test_uncompressed_warc_with_a_wrong_content_length_keeps_the_next_record():
    data = _plain_warc(3)
    start = data.index(b"<urn:uuid:r1>")
    length_at = data.index(b"Content-Length: ", start) + len(b"Content-Length: ")
    length_end = data.index(b"\r\n", length_at)
    wrong = data[:length_at] + str(int(data[length_at:length_end]) + 500).encode() + data[length_end:]
    rows, counts = read_all(wrong)
    assert [r["id"] for r in rows] == ["<urn:uuid:r0>", "<urn:uuid:r2>"]
    assert counts["warc.malformed_record"] == 1


def test_uncompressed_truncated_and_oversized_records():
    data = _plain_warc(3)
    rows, counts = read_all(data[: data.index(b"<urn:uuid:r2>") + 400])
    assert [r["id"] for r in rows] == ["<urn:uuid:r0>", "<urn:uuid:r1>"] and counts["warc.truncated"] == 1
    rows, counts = read_all(data, max_page_bytes=100)
    assert rows == [] and counts["warc.too_large"] == 3


def test_record_without_an_id_is_counted_and_the_rest_is_read():
    """A record without `WARC-Record-ID` (the join key of every stage) used to fail the whole unit."""
    data = _plain_warc(3)
    start = data.index(b"WARC-Record-ID: <urn:uuid:r1>")
    stripped = data[:start] + data[data.index(b"\r\n", start) + 2:]
    for damaged in (stripped, gzip.compress(stripped)):
        rows, counts = read_all(damaged)
        assert [r["id"] for r in rows] == ["<urn:uuid:r0>", "<urn:uuid:r2>"]
        assert counts["warc.missing_record_id"] == 1 and counts["warc.malformed_record"] == 0
