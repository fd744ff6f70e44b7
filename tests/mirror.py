"""Builds a local Common Crawl layout for tests: real CC WARC excerpts plus WARCs written with warcio
from real Finnish / Estonian / Swedish / English text in realistic HTML, with planted bad records."""

from __future__ import annotations

import gzip
import html
import io
import json
import random
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
from warcio.archiveiterator import ArchiveIterator
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
    record_id: str | None = None  # None: warcio makes one up; "": the record has no WARC-Record-ID header
    headers: tuple[tuple[str, str], ...] = ()  # more HTTP response headers (Location, tdm-reservation, …)
    date: str = "2024-05-18T01:58:10Z"  # WARC-Date


def write_warc(path: Path, records: list[Record], corrupt_after: set[int] = frozenset(),
               identified: bool = False) -> list[str]:
    """Write gzip-per-record WARC; records whose index is in `corrupt_after` get a damaged gzip member. With
    `identified`, each response carries `WARC-Identified-Payload-Type` (its Content-Type's media type), as Common
    Crawl's do: datatrove's reader trusts it, and without it asks libmagic, which calls some real pages binary."""
    ids = []
    buffer = io.BytesIO()
    for index, record in enumerate(records):
        member = io.BytesIO()
        writer = WARCWriter(member, gzip=record.record_id != "")
        headers = StatusAndHeaders(record.status, [("Content-Type", record.content_type),
                                                   ("Content-Length", str(len(record.body))), *record.headers],
                                   protocol="HTTP/1.1")
        warc_headers = {"WARC-Date": record.date}
        if identified:
            warc_headers["WARC-Identified-Payload-Type"] = record.content_type.split(";")[0].strip()
        if record.record_id:
            warc_headers["WARC-Record-ID"] = record.record_id
        rec = writer.create_warc_record(record.url, "response", payload=io.BytesIO(record.body),
                                        http_headers=headers, warc_headers_dict=warc_headers)
        writer.write_record(rec)
        ids.append(rec.rec_headers.get_header("WARC-Record-ID"))
        data = member.getvalue()
        if record.record_id == "":
            start = data.index(b"WARC-Record-ID: ")
            data = gzip.compress(data[:start] + data[data.index(b"\r\n", start) + 2:], mtime=0)
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
    duplicates: dict[str, list[str]] = field(default_factory=dict)  # original record id → ids of its copies


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


def released(output: Path, language: str = "fin_Latn") -> dict[str, dict]:
    """Every document a run released under `output`, by id, with the shard it is in."""
    documents = {}
    for path in sorted((output / language / "data").rglob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            documents[row["id"]] = {**row, "_shard": str(path.relative_to(output))}
    return documents


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
            if with_bad_records and c_index == 1 and f_index == 0:
                copies, copied = syndicated_copies(mirror)
                records += copies
                texts.update(copied)
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


def syndicated_copies(mirror: Mirror) -> tuple[list[Record], dict[str, str]]:
    """Pages of the first 2024-22 file republished in 2024-18 under other URLs: two exact copies of one (a
    cluster of 3) and a copy of another with one word changed (Jaccard ≈ 0.95: a cluster of 2)."""
    originals = sorted(i for i in mirror.finnish if "-fin-0-" in i)[2:4]
    records, texts = [], {}
    for n, (original, copies) in enumerate(zip(originals, (2, 1))):
        for c in range(copies):
            text = mirror.finnish[original]
            if copies == 1:
                words = text.split(" ")
                words[len(words) // 2] = "kuitenkin"
                text = " ".join(words)
            record_id = f"<urn:uuid:copy-{n}-{c}>"
            records.append(Record(f"https://www.uutiskooste{c}.fi/{n}", page(text, "fi", f"Kooste {n}").encode(),
                                  record_id=record_id))
            texts[record_id] = text
            mirror.duplicates.setdefault(original, []).append(record_id)
    return records, texts


def bad_records(mirror: Mirror) -> list[Record]:
    """One record per kind of bad input, each counted under its reason."""
    finnish = documents("fin", 1, 999)[0]
    bad = [
        Record("https://bad.example.fi/binary", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40, "image/png"),
        Record("https://bad.example.fi/octet", b"\x00\x01\x02" * 3000, "text/html"),
        Record("https://bad.example.fi/huge", page(finnish * 4000, "fi", "Huge").encode()),
        Record("https://bad.example.fi/notfound", b"<html>gone</html>", status="404 Not Found"),
        Record("https://bad.example.fi/no-id", page(documents("fin", 1, 997)[0], "fi", "Ei tunnusta").encode(),
               record_id=""),
    ]
    mirror.planted.update({"warc.not_html": 1, "warc.binary": 1, "warc.too_large": 1, "warc.http_status": 1,
                           "warc.missing_record_id": 1})
    # a wrong declared encoding: Finnish in Windows-1252 labelled UTF-8 must still come out right
    latin = documents("fin", 1, 998)[0]
    record_id = "<urn:uuid:wrong-encoding-0>"
    bad.append(Record("https://www.wrong-encoding.fi/a", page(latin, "fi", "Koodaus").encode("cp1252"),
                      record_id=record_id))
    mirror.finnish[record_id] = latin
    return bad


# --- Common Crawl's columnar URL index for the mirror (index-guided runs) ---------------------------------------

INDEX_CRAWLS = ("CC-MAIN-2024-22", "CC-MAIN-2024-18")
INDEX_PREFIX = "cc-index/table/cc-main/warc"
# The columns of Common Crawl's flat index schema (cc-index-table, cc-index-schema-flat.json) that the mirror fills,
# with their Parquet types; `crawl` and `subset` are the hive partitions (directories), as in the real table.
INDEX_SCHEMA = pa.schema([
    ("url_surtkey", pa.string()), ("url", pa.string()), ("url_host_name", pa.string()), ("url_host_tld", pa.string()),
    ("url_host_registered_domain", pa.string()), ("url_protocol", pa.string()), ("url_path", pa.string()),
    ("url_query", pa.string()), ("fetch_time", pa.timestamp("us", tz="UTC")), ("fetch_status", pa.int16()),
    ("content_digest", pa.string()), ("content_mime_type", pa.string()), ("content_mime_detected", pa.string()),
    ("content_charset", pa.string()), ("content_languages", pa.string()), ("content_truncated", pa.string()),
    ("warc_filename", pa.string()), ("warc_record_offset", pa.int32()), ("warc_record_length", pa.int32()),
    ("warc_segment", pa.string()),
])
_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.IGNORECASE | re.DOTALL)


def warc_responses(path: Path) -> list[dict]:
    """Every `response` record of a gzip-per-record WARC with its offset and length (warcio's ArchiveIterator
    offsets). A damaged gzip member is left out, reading resumes at the next member (Common Crawl indexed its
    WARCs before anything could damage them: the mirror's damage stands for what happens on the way)."""
    data = path.read_bytes()
    rows: list[dict] = []
    base = 0
    while base < len(data):
        iterator = ArchiveIterator(io.BytesIO(data[base:]))
        end = base
        try:
            for record in iterator:
                body = record.content_stream().read()
                offset, length = base + iterator.get_record_offset(), iterator.get_record_length()
                end = offset + length
                if record.rec_type == "response":
                    rows.append({"record": record, "body": body, "offset": offset, "length": length})
            return rows
        except Exception:  # noqa: BLE001 - the damaged member: resync on the next gzip header
            following = data.find(b"\x1f\x8b\x08", end + 1)
            if following < 0:
                return rows
            base = following
    return rows


def cld2_stand_in(htmls: list[str]) -> list[str | None]:
    """A stand-in for the CLD2 labels of the index: lid.176 (through the project's LID block) on the page's text
    with the tags stripped, as CLD2 reads HTML; up to three languages scoring >= 0.1, best first, as the ISO 639-3
    codes the index writes (`language_configs.cld2.index_code`); None when none is a CLD2 language."""
    from curate.errors import UserError
    from curate.blocks.lid import LanguageId
    from curate.language_configs.cld2 import index_code

    texts = [" ".join(html.unescape(_TAGS.sub(" ", h)).split()) for h in htmls]
    labelled = LanguageId(model="ft176")(pa.table({"text": texts}))
    languages: list[str | None] = []
    for scores in labelled["top_langs"].to_pylist():
        codes = []
        for key, score in json.loads(scores).items():
            try:
                code = index_code(key.removesuffix("_score"))
            except UserError:
                continue
            if score >= 0.1 and code not in codes:
                codes.append(code)
        languages.append(",".join(codes) or None)
    return languages


def cld2_labels(htmls: list[str]) -> list[str | None]:
    """The index's `content_languages` as Common Crawl writes them: CLD2 (pycld2) on the page's HTML (not plain
    text: CLD2 skips the markup itself), up to three languages by descending share of the text, `un` left out, as
    ISO 639-3 codes; None when CLD2 finds no language. Characters pycld2 refuses as invalid UTF-8 are read as
    spaces, on the assumption that Common Crawl's Java wrapper hands such pages to CLD2 and labels them
    (docs/sources.md)."""
    from curate.blocks.prefilter import cld2_detect
    from curate.language_configs.cld2 import detector_codes

    labels = []
    for text in htmls:
        found = cld2_detect(text)
        codes = [] if found is None else [detector_codes()[code] for _, code, percent, _ in found[2]
                                          if percent and code in detector_codes()]
        labels.append(",".join(dict.fromkeys(codes)) or None)
    return labels


def surt(url: str) -> str:
    """The SURT key of a URL as the index sorts by it: `fi,s0-uutiset)/artikkeli/0/1`."""
    parts = urlsplit(url)
    host = (parts.hostname or "").removeprefix("www.")
    key = ",".join(reversed(host.split("."))) + ")" + (parts.path or "/")
    return key + (f"?{parts.query}" if parts.query else "")


def index_rows(root: Path, warc: str, labeller=cld2_stand_in) -> list[dict]:
    """The index rows of one WARC of the mirror (`warc` relative to `root`), `content_languages` from `labeller`
    (HTML pages → labels)."""
    from curate.blocks.warc import decode_html

    responses = warc_responses(root / warc)
    htmls = []
    rows = []
    for item in responses:
        record, body = item["record"], item["body"]
        http = record.http_headers
        declared = (http.get_header("Content-Type") or "") if http else ""
        mime = declared.split(";")[0].strip().lower() or None
        detected = "application/octet-stream" if b"\x00" in body[:8192] else mime
        text = decode_html(body, declared) if detected and "html" in detected else None
        htmls.append(text or "")
        url = record.rec_headers.get_header("WARC-Target-URI")
        parts = urlsplit(url)
        host = parts.hostname or ""
        digest = record.rec_headers.get_header("WARC-Payload-Digest") or ""
        rows.append({
            "url_surtkey": surt(url), "url": url, "url_host_name": host, "url_host_tld": host.rsplit(".", 1)[-1],
            "url_host_registered_domain": ".".join(host.split(".")[-2:]), "url_protocol": parts.scheme,
            "url_path": parts.path or "/", "url_query": parts.query or None,
            "fetch_time": datetime.fromisoformat(record.rec_headers.get_header("WARC-Date").replace("Z", "+00:00")),
            "fetch_status": int(http.get_statuscode()) if http else 0, "content_digest": digest.removeprefix("sha1:"),
            "content_mime_type": mime, "content_mime_detected": detected,
            "content_charset": (declared.partition("charset=")[2].strip() or None) if text is not None else None,
            "content_languages": None, "content_truncated": None, "warc_filename": warc,
            "warc_record_offset": item["offset"], "warc_record_length": item["length"],
            "warc_segment": warc.split("/segments/")[1].split("/")[0],
        })
    languages = labeller([h for h in htmls if h])
    for row, text in zip(rows, htmls):
        if text:
            row["content_languages"] = languages.pop(0)
    return rows


def build_index(mirror: Mirror, crawls: tuple[str, ...] = INDEX_CRAWLS, parts: int = 2,
                labeller=cld2_stand_in) -> dict[str, pa.Table]:
    """Common Crawl's columnar URL index for `crawls` of the mirror, in the real layout: sorted by SURT key,
    `parts` gzip Parquet files (small row groups) under `cc-index/table/cc-main/warc/crawl=…/subset=warc/`, and
    `crawl-data/<crawl>/cc-index-table.paths.gz` listing them; languages from `labeller` (`cld2_labels`: CLD2
    itself; the default, `cld2_stand_in`, needs no pycld2). Returns each crawl's rows."""
    tables = {}
    for crawl in crawls:
        rows = sorted((r for warc in mirror.crawls[crawl] for r in index_rows(mirror.root, warc, labeller)),
                      key=lambda r: (r["url_surtkey"], r["fetch_time"]))
        table = pa.Table.from_pylist(rows, schema=INDEX_SCHEMA)
        directory = f"{INDEX_PREFIX}/crawl={crawl}/subset=warc"
        (mirror.root / directory).mkdir(parents=True, exist_ok=True)
        listing = []
        step = -(-table.num_rows // parts)
        for part in range(parts):
            name = f"{directory}/part-{part:05d}-{crawl[-7:]}-mirror.c000.gz.parquet"
            pq.write_table(table.slice(part * step, step), mirror.root / name, compression="gzip", row_group_size=16)
            listing.append(name)
        listing.append(f"{INDEX_PREFIX}/crawl={crawl}/subset=robotstxt/part-00000-none.c000.gz.parquet")
        (mirror.root / "crawl-data" / crawl / "cc-index-table.paths.gz").write_bytes(
            gzip.compress("\n".join(listing).encode() + b"\n"))
        tables[crawl] = table
    return tables
