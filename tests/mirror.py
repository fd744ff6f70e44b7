"""Builds a local Common Crawl layout for tests: real CC WARC excerpts plus WARCs written with warcio
from real Finnish / Estonian / Swedish / English text in realistic HTML, with planted bad records."""

from __future__ import annotations

import gzip
import html
import io
import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATA = SHARED / "data"

TEMPLATE = """<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="/static/site.css"><script>window.dataLayer=[];</script></head>
<body><header><nav><a href="/">Etusivu</a> | <a href="/uutiset">Uutiset</a> | <a href="/urheilu">Urheilu</a>
| <a href="/kulttuuri">Kulttuuri</a></nav></header>
<main><article><h1>{title}</h1><p class="byline">{date}</p>
{paragraphs}
</article></main>
<aside><h3>Luetuimmat</h3><ul><li><a href="/a/1">Lue myös</a></li><li><a href="/a/2">Tilaa uutiskirje</a></li></ul></aside>
<footer><p>© 2024 Media Oy. Kaikki oikeudet pidätetään.</p><a href="/privacy">Tietosuoja</a></footer>
</body></html>"""


def sentences(language: str) -> list[str]:
    """Real sentences: FLORES-200 devtest for every language, plus the UD / WMT Finnish text for `fin`."""
    codes = {"fin": "fin_Latn", "est": "est_Latn", "swe": "swe_Latn", "eng": "eng_Latn", "deu": "deu_Latn"}
    lines = (DATA / "text" / "flores200" / f"{codes[language]}.txt").read_text(encoding="utf-8").splitlines()
    if language == "fin":
        for path in sorted((DATA / "text" / "fi").glob("wmt-*.txt")):
            lines += path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if len(line.split()) >= 4]


def documents(language: str, count: int, seed: int, sentences_per_doc: tuple[int, int] = (8, 16)) -> list[str]:
    """`count` documents of consecutive sentences, grouped in paragraphs of 2-4 sentences."""
    pool = sentences(language)
    rng = random.Random(f"{language}:{seed}")
    docs = []
    for _ in range(count):
        length = rng.randint(*sentences_per_doc)
        start = rng.randrange(0, len(pool) - length)
        chunk = pool[start:start + length]
        paragraphs, i = [], 0
        while i < len(chunk):
            step = rng.randint(2, 4)
            paragraphs.append(" ".join(chunk[i:i + step]))
            i += step
        docs.append("\n\n".join(paragraphs))
    return docs


def page(text: str, lang: str, title: str) -> str:
    paragraphs = "\n".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n"))
    return TEMPLATE.format(lang=lang, title=html.escape(title), date="12.3.2024", paragraphs=paragraphs)


@dataclass
class Record:
    url: str
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    status: str = "200 OK"
    record_id: str | None = None


def write_warc(path: Path, records: list[Record], corrupt_after: set[int] = frozenset()) -> list[str]:
    """Write gzip-per-record WARC; records whose index is in `corrupt_after` get a damaged gzip member."""
    ids = []
    buffer = io.BytesIO()
    for index, record in enumerate(records):
        member = io.BytesIO()
        writer = WARCWriter(member, gzip=True)
        headers = StatusAndHeaders(record.status, [("Content-Type", record.content_type),
                                                   ("Content-Length", str(len(record.body)))], protocol="HTTP/1.1")
        warc_headers = {"WARC-Date": "2024-05-18T01:58:10Z"}
        if record.record_id:
            warc_headers["WARC-Record-ID"] = record.record_id
        rec = writer.create_warc_record(record.url, "response", payload=io.BytesIO(record.body),
                                        http_headers=headers, warc_headers_dict=warc_headers)
        writer.write_record(rec)
        ids.append(rec.rec_headers.get_header("WARC-Record-ID"))
        data = member.getvalue()
        if index in corrupt_after:
            middle = len(data) // 2
            data = data[:middle] + bytes(b ^ 0x5A for b in data[middle:middle + 40]) + data[middle + 40:]
        buffer.write(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return ids


@dataclass
class Mirror:
    root: Path
    crawls: dict[str, list[str]] = field(default_factory=dict)
    finnish: dict[str, str] = field(default_factory=dict)  # record id → the Finnish source text
    planted: dict[str, int] = field(default_factory=dict)  # bad-record reason → how many were planted


def multilingual_records(seed: int, finnish: int, others: int, prefix: str) -> tuple[list[Record], dict[str, str]]:
    records: list[Record] = []
    texts: dict[str, str] = {}
    for i, text in enumerate(documents("fin", finnish, seed)):
        record_id = f"<urn:uuid:{prefix}-fin-{seed}-{i:05d}>"
        records.append(Record(f"https://www.{prefix}-uutiset.fi/artikkeli/{seed}/{i}",
                              page(text, "fi", f"Uutinen {i}").encode(), record_id=record_id))
        texts[record_id] = text
    for language, tld in (("est", "ee"), ("swe", "se"), ("eng", "com")):
        for i, text in enumerate(documents(language, others, seed)):
            records.append(Record(f"https://news.{prefix}.{tld}/{language}/{seed}/{i}",
                                  page(text, language[:2], f"News {i}").encode()))
    random.Random(seed).shuffle(records)
    return records, texts


def build_mirror(root: Path, finnish_per_file: int = 12, others_per_file: int = 4, files_per_crawl: int = 2,
                 with_bad_records: bool = True) -> Mirror:
    """A CC layout under `root`: CC-MAIN-2024-22 and CC-MAIN-2024-18 (generated + the real 2024-22 excerpt),
    CC-MAIN-2020-34 (the real resiliparse excerpt); `collinfo.json` at the root."""
    mirror = Mirror(root)
    crawls = {"CC-MAIN-2024-22": [], "CC-MAIN-2024-18": [], "CC-MAIN-2020-34": []}
    for c_index, crawl in enumerate(("CC-MAIN-2024-22", "CC-MAIN-2024-18")):
        for f_index in range(files_per_crawl):
            seed = c_index * 100 + f_index
            records, texts = multilingual_records(seed, finnish_per_file, others_per_file, f"s{seed}")
            corrupt: set[int] = set()
            if with_bad_records and c_index == 0 and f_index == 0:
                records += bad_records(mirror)
                corrupt = {1}
                mirror.planted["warc.corrupt_gzip"] = 1
                lost = records[1]
                texts.pop(lost.record_id, None)
            relative = f"crawl-data/{crawl}/segments/1715971{seed:05d}.{f_index}/warc/CC-MAIN-{seed:05d}.warc.gz"
            write_warc(root / relative, records, corrupt_after=corrupt)
            crawls[crawl].append(relative)
            mirror.finnish.update(texts)
    real = {"CC-MAIN-2024-22": "CC-MAIN-2024-22-whirlwind.warc.gz", "CC-MAIN-2020-34": "CC-MAIN-2020-34-resiliparse.warc.gz"}
    for crawl, name in real.items():
        relative = f"crawl-data/{crawl}/segments/real/warc/{name}"
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA / "warc" / name, root / relative)
        crawls[crawl].append(relative)
    for crawl, paths in crawls.items():
        listing = root / "crawl-data" / crawl / "warc.paths.gz"
        listing.parent.mkdir(parents=True, exist_ok=True)
        listing.write_bytes(gzip.compress("\n".join(paths).encode() + b"\n"))
    collinfo = [{"id": crawl, "name": crawl.replace("CC-MAIN-", "")} for crawl in sorted(crawls, reverse=True)]
    (root / "collinfo.json").write_text(json.dumps(collinfo))
    mirror.crawls = crawls
    return mirror


def bad_records(mirror: Mirror) -> list[Record]:
    """One record per kind of bad input, each counted under its reason."""
    finnish = documents("fin", 1, 999)[0]
    bad = [
        Record("https://bad.example.fi/binary", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40, "image/png"),
        Record("https://bad.example.fi/octet", b"\x00\x01\x02" * 3000, "text/html"),
        Record("https://bad.example.fi/huge", page(finnish * 4000, "fi", "Huge").encode()),
        Record("https://bad.example.fi/notfound", b"<html>gone</html>", status="404 Not Found"),
    ]
    mirror.planted.update({"warc.not_html": 1, "warc.binary": 1, "warc.too_large": 1, "warc.http_status": 1})
    # a wrong declared encoding: Finnish in Windows-1252 labelled UTF-8 must still come out right
    latin = documents("fin", 1, 998)[0]
    record_id = "<urn:uuid:wrong-encoding-0>"
    bad.append(Record("https://www.wrong-encoding.fi/a", page(latin, "fi", "Koodaus").encode("cp1252"),
                      record_id=record_id))
    mirror.finnish[record_id] = latin
    return bad
