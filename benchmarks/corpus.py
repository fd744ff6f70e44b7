"""The benchmark corpus: a crawl-like local Common Crawl mirror of unique, realistic HTML pages.

What goes in at scale `k` (1× = the 100 real pages; 65× ≈ 6,600 pages), plus Finnish pages making up `share` of
all pages (default `DEFAULT_SHARE`, 1 %; Finnish is 0.3–0.5 % of a real crawl):

- the 100 real Common Crawl pages of `shared/data/html/cc-sample100` (many languages, mostly English). Scale `k`
  holds `k` copies of each: copy 0 is the page as crawled, copy `i > 0` has `REPLACE_SHARE` of the words of its
  visible text nodes (not scripts, styles, comments or tags) replaced by words drawn, seeded, from the same page,
  so language and markup stay the page's own while a near-dedup (word 5-gram MinHash) no longer pairs the copies;
- `round(share × 100k / (1 − share))` Finnish pages, each with its own text (paragraphs of consecutive real
  sentences from `shared/data/text/fi` and FLORES-200 Finnish, drawn at seeded random places) inside realistic
  page markup: the two real Finnish news pages of `shared/data/html/fi` (their article paragraphs, title and
  heading replaced) and four site templates (news, blog, forum, web shop) with navigation, cookie banners,
  related links, comments and inline scripts, so that extraction has the boilerplate to remove.

Layout (what `curate run --source DIR --snapshots 2024-22` reads, as tests/mirror.py builds it):

    DIR/collinfo.json
    DIR/crawl-data/CC-MAIN-2024-22/warc.paths.gz
    DIR/crawl-data/CC-MAIN-2024-22/segments/<segment>/warc/CC-MAIN-…-<n>.warc.gz   (RECORDS_PER_FILE pages each)
    DIR/crawl-data/CC-MAIN-2024-22/warmup/warmup.warc.gz   (a few other pages for warm-up; not in warc.paths.gz)
    DIR/corpus.json   (what was built: parameters, files, counts)

WARCs are gzip-per-record, as Common Crawl writes them: a `warcinfo` record, then per page a `request`, a
`response` (HTTP status line and headers, `WARC-Identified-Payload-Type: text/html`) and a `metadata` record.
Records are shuffled (seeded) so Finnish pages are spread over the files. The same (scale, share, seed) gives the same
pages, ids and URLs; a directory that already holds that corpus is reused.

    python benchmarks/corpus.py OUT_DIR --scale 65 [--share 0.01] [--seed 0] [--check]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import html as html_lib
import io
import json
import random
import re
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATA = SHARED / "data"
CC_SAMPLE = DATA / "html" / "cc-sample100"
FINNISH_HTML = DATA / "html" / "fi"
FINNISH_TEXT = DATA / "text" / "fi"
FLORES_FINNISH = DATA / "text" / "flores200" / "fin_Latn.txt"

CRAWL = "CC-MAIN-2024-22"
SEGMENT = "1715971057216.39"
DEFAULT_SHARE = 0.01  # of all pages: Finnish
RECORDS_PER_FILE = 100
REPLACE_SHARE = 0.2
URL_SAFE = ":/?&=%#;@+,~!$'()*[]"
WARMUP_PAGES = 4  # of each kind (CC sample, Finnish) in the warm-up WARC
CORPUS_VERSION = 2  # bump when the generator changes what it writes

# A tag, a comment, or a whole script/style element: what is not a visible text node.
_MARKUP = re.compile(r"(<!--.*?-->|<script\b.*?</script\s*>|<style\b.*?</style\s*>|<[^>]*>)", re.S | re.I)
_WORD = re.compile(r"&#?\w+;|\w+")
_CANONICAL = re.compile(r"""<link\b[^>]*\brel=["']canonical["'][^>]*>|<meta\b[^>]*\bproperty=["']og:url["'][^>]*>""",
                        re.I)
_HREF = re.compile(r"""(?:href|content)=["'](https?://[^"'\s]+)["']""", re.I)
_PARAGRAPH = re.compile(r"(<p\b[^>]*>)(.*?)(</p\s*>)", re.S | re.I)
_TITLE = re.compile(r"(<title\b[^>]*>)(.*?)(</title\s*>)", re.S | re.I)
_H1 = re.compile(r"(<h1\b[^>]*>)(.*?)(</h1\s*>)", re.S | re.I)


# --- sources -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page to write: its URL, its HTML and what it is (`cc` or `fin`)."""

    url: str
    html: str
    kind: str
    record_id: str


def cc_sample_pages() -> list[tuple[str, str]]:
    """(url, html) of the 100 real pages, in file-number order; the URL is the page's canonical or og:url
    when it has an absolute one, else a made-up one on its own host."""
    pages = []
    for path in sorted(CC_SAMPLE.glob("*.html"), key=lambda p: int(p.stem)):
        text = path.read_bytes().decode("utf-8", "replace")
        url = None
        for tag in _CANONICAL.findall(text[:200_000]):
            found = _HREF.search(tag)
            if found:
                url = found.group(1)
                break
        url = quote(url, safe=URL_SAFE) if url else None  # as crawlers write them: percent-encoded, ASCII
        pages.append((url or f"https://www.site{int(path.stem):03d}.cc-sample.net/page/{path.stem}.html", text))
    return pages


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def finnish_sentences() -> tuple[list[list[str]], list[str]]:
    """Real Finnish text: runs of consecutive sentences (one run per source file, kept in order so paragraphs
    read as text) and short lines to use as titles and headings."""
    runs, headings = [], []
    for path in [*sorted(FINNISH_TEXT.glob("*.txt")), FLORES_FINNISH]:
        lines = _lines(path)
        runs.append([line for line in lines if len(line.split()) >= 4])
        headings += [line.rstrip(".") for line in lines if 2 <= len(line.split()) <= 9 and line[0].isupper()]
    return runs, headings


# --- varying a real page -----------------------------------------------------------------------------------


def vary_html(html: str, rng: random.Random, share: float = REPLACE_SHARE) -> str:
    """`html` with `share` of the words of its visible text nodes replaced by words of the same page.

    Markup, scripts, styles, comments and character references are left as they are; a replacement keeps the
    capitalisation of the word it replaces."""
    parts = _MARKUP.split(html)
    pool = [w for text in parts[0::2] for w in _WORD.findall(text) if w[0] != "&" and not w.isdigit()]
    if not pool:
        return html

    def replace(match: re.Match) -> str:
        word = match.group(0)
        if word[0] == "&" or rng.random() >= share:
            return word
        new = rng.choice(pool)
        if word[0].isupper():
            new = new[0].upper() + new[1:]
        elif word[0].islower():
            new = new[0].lower() + new[1:]
        return new

    for index in range(0, len(parts), 2):
        if parts[index].strip():
            parts[index] = _WORD.sub(replace, parts[index])
    return "".join(parts)


def copy_url(url: str, copy: int) -> str:
    if copy == 0:
        return url
    return f"{url}{'&' if '?' in url else '?'}v={copy}"


# --- Finnish pages -------------------------------------------------------------------------------------------


class FinnishText:
    """Seeded Finnish documents from real sentences: paragraphs of 1-4 consecutive sentences, each paragraph
    from its own random place, so two documents share at most a sentence or two by chance."""

    def __init__(self) -> None:
        self.runs, self.headings = finnish_sentences()
        self.weights = [len(run) for run in self.runs]

    def paragraph(self, rng: random.Random) -> str:
        run = rng.choices(self.runs, weights=self.weights)[0]
        length = rng.randint(1, 4)
        start = rng.randrange(0, len(run) - length)
        return " ".join(run[start:start + length])

    def document(self, rng: random.Random, paragraphs: tuple[int, int] = (4, 14)) -> tuple[str, list[str]]:
        return rng.choice(self.headings), [self.paragraph(rng) for _ in range(rng.randint(*paragraphs))]

    def heading(self, rng: random.Random) -> str:
        return rng.choice(self.headings)


_SECTIONS = ["Kotimaa", "Ulkomaat", "Talous", "Politiikka", "Urheilu", "Kulttuuri", "Tiede", "Terveys", "Viihde",
             "Autot", "Matkailu", "Ruoka", "Asuminen", "Tekniikka", "Mielipide", "Pääkirjoitus", "Sää", "Lapset"]
_DOMAINS = {
    "news": ["www.paikallisuutiset.fi", "www.uutisportti.fi", "www.savonsanomat-arkisto.fi", "www.lahiuutiset.fi"],
    "blog": ["puutarhapalsta.blogspot.com", "www.arkea-ja-juhlaa.fi", "kotikokki.vuodatus.net", "www.matkalla.fi"],
    "forum": ["keskustelu.kotiforum.fi", "www.autofoorumi.fi", "palsta.harrastajat.fi"],
    "shop": ["www.verkkopuoti.fi", "www.kodin-tarvike.fi", "kauppa.urheiluvaruste.fi"],
}
_COOKIE = ("<div id=\"cookie-consent\" class=\"cc-banner\" role=\"dialog\"><p>Käytämme evästeitä sivuston toiminnan, "
           "analytiikan ja mainonnan kohdentamiseen. Voit muuttaa asetuksia milloin tahansa.</p>"
           "<button class=\"cc-accept\">Hyväksy kaikki</button><button class=\"cc-settings\">Evästeasetukset"
           "</button><a href=\"/tietosuoja\">Tietosuojaseloste</a></div>")


def _script_blob(rng: random.Random, size: int) -> str:
    """An inline script of about `size` bytes that looks like a bundler's output and a page-state JSON."""
    names = ["config", "state", "route", "article", "ads", "tracking", "consent", "user", "layout", "menu"]
    chunks, total = [], 0
    while total < size:
        name = rng.choice(names)
        key = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 10)))
        chunk = (f'window.__{name}_{key}={{"id":{rng.randint(1, 10**9)},"slot":"{key}-{rng.randint(1, 99)}",'
                 f'"enabled":{str(rng.random() < 0.5).lower()},"ttl":{rng.randint(60, 86400)},'
                 f'"path":"/{rng.choice(_SECTIONS).lower()}/{key}","w":[{",".join(str(rng.randint(0, 999)) for _ in range(8))}]}};'
                 f'function {key}(e,t){{var n=e&&e.{name}||{{}};return t?n[t]:n}}')
        chunks.append(chunk)
        total += len(chunk)
    return "".join(chunks)


def _style_blob(rng: random.Random, size: int) -> str:
    rules, total = [], 0
    while total < size:
        cls = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6))
        rule = (f".{cls}{{margin:{rng.randint(0, 32)}px {rng.randint(0, 32)}px;color:#{rng.randint(0, 0xFFFFFF):06x};"
                f"font-size:{rng.randint(10, 28)}px;display:{rng.choice(['flex', 'block', 'grid', 'inline-block'])}}}")
        rules.append(rule)
        total += len(rule)
    return "".join(rules)


def _nav(rng: random.Random, count: int) -> str:
    items = rng.sample(_SECTIONS, min(count, len(_SECTIONS)))
    return "".join(f'<li><a href="/{s.lower()}">{s}</a></li>' for s in items)


def _related(rng: random.Random, text: FinnishText, count: int) -> str:
    return "".join(f'<li><a href="/artikkeli/{rng.randint(10**5, 10**6)}">{html_lib.escape(text.heading(rng))}</a></li>'
                   for _ in range(count))


def _paras(paragraphs: list[str]) -> str:
    return "\n".join(f"<p>{html_lib.escape(p)}</p>" for p in paragraphs)


def _head(title: str, rng: random.Random, site: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="fi"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{html_lib.escape(title)} | {site}</title>'
            f'<meta property="og:title" content="{html_lib.escape(title)}">'
            f'<link rel="stylesheet" href="/static/css/main.{rng.randint(10**7, 10**8):x}.css">'
            f'<style>{_style_blob(rng, rng.randint(2_000, 12_000))}</style>'
            f'<script>{_script_blob(rng, rng.randint(4_000, 30_000))}</script></head>\n')


def news_page(rng: random.Random, text: FinnishText, site: str) -> str:
    title, paragraphs = text.document(rng)
    date = f"{rng.randint(1, 28)}.{rng.randint(1, 12)}.{rng.randint(2015, 2024)} klo {rng.randint(6, 23)}.{rng.randint(10, 59)}"
    return (_head(title, rng, site) +
            f'<body>{_COOKIE}<header class="site-header"><a class="logo" href="/">{site}</a>'
            f'<nav><ul class="main-menu">{_nav(rng, 12)}</ul></nav><form action="/haku"><input name="q" '
            f'placeholder="Hae sivustolta"></form><a href="/tilaa">Tilaa</a> <a href="/kirjaudu">Kirjaudu</a></header>\n'
            f'<main><article><p class="section">{rng.choice(_SECTIONS)}</p><h1>{html_lib.escape(title)}</h1>'
            f'<p class="byline">Toimittaja {html_lib.escape(text.heading(rng).split()[0])} · {date}</p>'
            f'<figure><img src="/kuvat/{rng.randint(10**6, 10**7)}.jpg" alt=""><figcaption>Kuva: Lehtikuva'
            f'</figcaption></figure>\n<div class="article-body">{_paras(paragraphs)}</div>'
            f'<div class="share">Jaa: <a href="#">Facebook</a> <a href="#">X</a> <a href="#">WhatsApp</a></div>'
            f'</article><aside class="related"><h2>Luetuimmat</h2><ol>{_related(rng, text, 8)}</ol>'
            f'<h2>Uusimmat</h2><ul>{_related(rng, text, 10)}</ul></aside></main>\n'
            f'<footer><ul>{_nav(rng, 16)}</ul><p>© {site} {rng.randint(2015, 2024)}. Kaikki oikeudet pidätetään.'
            f'</p><a href="/tietosuoja">Tietosuoja</a> <a href="/evasteet">Evästeet</a> <a href="/yhteystiedot">'
            f'Yhteystiedot</a></footer><script>{_script_blob(rng, rng.randint(2_000, 20_000))}</script></body></html>')


def blog_page(rng: random.Random, text: FinnishText, site: str) -> str:
    title, paragraphs = text.document(rng, (3, 10))
    count = rng.randint(0, 6)
    comments = "".join(
        f'<li class="comment"><div class="comment-author">{html_lib.escape(text.heading(rng).split()[0])}</div>'
        f'<div class="comment-date">{rng.randint(1, 28)}.{rng.randint(1, 12)}.2023</div>'
        f'<p>{html_lib.escape(text.paragraph(rng))}</p><a class="reply" href="#">Vastaa</a></li>'
        for _ in range(count))
    months = "".join(f'<li><a href="/{y}/{m:02d}/">{m}/{y}</a> ({rng.randint(1, 12)})</li>'
                     for y in (2023, 2024) for m in range(1, 13))
    return (_head(title, rng, site) +
            f'<body class="blog"><div id="header"><h2 class="blog-title"><a href="/">{site}</a></h2>'
            f'<p class="description">Ajatuksia arjesta, ruoasta ja matkoilta</p></div>\n'
            f'<div id="content"><div class="post"><h1 class="post-title">{html_lib.escape(title)}</h1>'
            f'<div class="post-body">{_paras(paragraphs)}</div><div class="post-footer">Tunnisteet: '
            f'{", ".join(rng.sample(_SECTIONS, 3))}</div></div><h3>{count} kommenttia</h3><ol class="comments">{comments}</ol><form class="comment-form"><textarea name="c">'
            f'</textarea><button>Lähetä kommentti</button></form></div>\n'
            f'<div id="sidebar"><h3>Arkisto</h3><ul>{months}</ul><h3>Suosituimmat</h3><ul>{_related(rng, text, 6)}'
            f'</ul></div><div id="footer">Blogin ylläpitäjä ei vastaa kommenttien sisällöstä.</div>'
            f'<script>{_script_blob(rng, rng.randint(1_000, 8_000))}</script></body></html>')


def forum_page(rng: random.Random, text: FinnishText, site: str) -> str:
    title = text.heading(rng)
    posts = "".join(
        f'<div class="post" id="p{rng.randint(10**6, 10**7)}"><div class="postauthor">'
        f'<a href="/jasen/{rng.randint(1, 99999)}">{html_lib.escape(text.heading(rng).split()[0].lower())}'
        f'{rng.randint(1, 99)}</a><span class="rank">Jäsen</span><span class="posts">Viestejä: '
        f'{rng.randint(1, 4000)}</span></div><div class="postbody">'
        f'{"".join(f"<p>{html_lib.escape(text.paragraph(rng))}</p>" for _ in range(rng.randint(1, 3)))}</div>'
        f'<div class="postfooter"><a href="#">Lainaa</a> <a href="#">Ilmoita</a> <span>{rng.randint(0, 40)} '
        f'tykkäystä</span></div></div>'
        for _ in range(rng.randint(3, 12)))
    return (_head(title, rng, site) +
            f'<body><div id="wrap"><div class="navbar"><a href="/">Etusivu</a> › <a href="/alue/'
            f'{rng.randint(1, 40)}">{rng.choice(_SECTIONS)}</a> › {html_lib.escape(title)}</div>'
            f'<div class="login"><a href="/kirjaudu">Kirjaudu sisään</a> <a href="/rekisteroidy">Rekisteröidy</a>'
            f'</div>\n<h1 class="topic-title">{html_lib.escape(title)}</h1>'
            f'<div class="pagination">Sivu 1 / {rng.randint(1, 9)}</div>{posts}\n'
            f'<div class="similar"><h3>Samankaltaiset aiheet</h3><ul>{_related(rng, text, 6)}</ul></div>'
            f'<div class="footer">Kaikki ajat ovat UTC+02:00 · <a href="/saannot">Säännöt</a></div></div>'
            f'<script>{_script_blob(rng, rng.randint(1_000, 10_000))}</script></body></html>')


def shop_page(rng: random.Random, text: FinnishText, site: str) -> str:
    title, paragraphs = text.document(rng, (2, 6))
    specs = "".join(f"<tr><th>{html_lib.escape(s)}</th><td>{rng.randint(1, 500)} {rng.choice(['cm', 'kg', 'W', 'kpl', 'l'])}"
                    f"</td></tr>" for s in rng.sample(["Leveys", "Korkeus", "Syvyys", "Paino", "Teho", "Tilavuus",
                                                      "Takuu", "Väri", "Materiaali", "Pakkauskoko"], 6))
    reviews = "".join(f'<div class="review"><span class="stars">{"★" * rng.randint(1, 5)}</span>'
                      f'<p>{html_lib.escape(text.paragraph(rng))}</p></div>' for _ in range(rng.randint(0, 4)))
    return (_head(title, rng, site) +
            f'<body>{_COOKIE}<header><a href="/">{site}</a><nav><ul>{_nav(rng, 10)}</ul></nav>'
            f'<a href="/ostoskori">Ostoskori (0)</a></header>\n<main class="product"><nav class="breadcrumb">'
            f'<a href="/">Etusivu</a> / <a href="/tuotteet">Tuotteet</a> / {html_lib.escape(title)}</nav>'
            f'<h1>{html_lib.escape(title)}</h1><div class="price">{rng.randint(5, 900)},{rng.randint(0, 99):02d} €'
            f'</div><button class="buy">Lisää ostoskoriin</button><p class="stock">Varastossa, toimitus 1–3 '
            f'arkipäivää</p><section class="description"><h2>Tuotekuvaus</h2>{_paras(paragraphs)}</section>'
            f'<table class="specs">{specs}</table><section class="reviews"><h2>Arvostelut</h2>{reviews}</section>'
            f'</main>\n<footer><p>Asiakaspalvelu ma–pe 9–17</p><ul>{_nav(rng, 8)}</ul></footer>'
            f'<script>{_script_blob(rng, rng.randint(3_000, 25_000))}</script></body></html>')


def real_finnish_page(template: str, rng: random.Random, text: FinnishText) -> str:
    """A real Finnish news page with its title, first heading and every long paragraph replaced."""
    title = text.heading(rng)

    def paragraph(match: re.Match) -> str:
        if len(_MARKUP.sub("", match.group(2)).strip()) < 60:
            return match.group(0)
        return match.group(1) + html_lib.escape(text.paragraph(rng)) + match.group(3)

    page = _PARAGRAPH.sub(paragraph, template)
    page = _TITLE.sub(lambda m: m.group(1) + html_lib.escape(title) + m.group(3), page, count=1)
    return _H1.sub(lambda m: m.group(1) + html_lib.escape(title) + m.group(3), page, count=1)


_REAL_TEMPLATES = {"yle.fi.3-11212601.html": ("yle.fi", "uutiset/3-{n}"),
                   "uusisuomi.fi.angela.html": ("www.uusisuomi.fi", "uutiset/{slug}/{uuid}")}
_KINDS = (("real", 0.2), ("news", 0.35), ("blog", 0.15), ("forum", 0.15), ("shop", 0.15))


def finnish_pages(count: int, seed: int, start: int = 0) -> list[tuple[str, str]]:
    """(url, html) of `count` Finnish pages; page `i` depends only on (seed, i)."""
    text = FinnishText()
    templates = {name: (FINNISH_HTML / name).read_text(encoding="utf-8") for name in _REAL_TEMPLATES}
    builders = {"news": news_page, "blog": blog_page, "forum": forum_page, "shop": shop_page}
    pages = []
    for index in range(start, start + count):
        rng = random.Random(f"fin:{seed}:{index}")
        kind = rng.choices([k for k, _ in _KINDS], weights=[w for _, w in _KINDS])[0]
        if kind == "real":
            name = rng.choice(sorted(templates))
            host, path = _REAL_TEMPLATES[name]
            html = real_finnish_page(templates[name], rng, text)
            url = f"https://{host}/" + path.format(n=10**7 + index, slug=f"artikkeli-{seed}-{index}",
                                                  uuid=uuid.UUID(int=rng.getrandbits(128)))
        else:
            site = rng.choice(_DOMAINS[kind])
            html = builders[kind](rng, text, site.removeprefix("www."))
            url = f"https://{site}/{rng.choice(_SECTIONS).lower()}/{kind}-{seed}-{index}"
        pages.append((quote(url, safe=URL_SAFE), html))
    return pages


# --- writing ------------------------------------------------------------------------------------------------


def _record_id(*parts: object) -> str:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:16]
    return f"<urn:uuid:{uuid.UUID(bytes=digest, version=4)}>"


def _warc_date(rng: random.Random) -> str:
    return f"2024-05-{rng.randint(18, 30):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"


def write_warc(path: Path, pages: list[Page], seed: int) -> int:
    """A gzip-per-record WARC: warcinfo, then request / response / metadata per page, as Common Crawl writes."""
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True)
    info = writer.create_warcinfo_record(path.name, {"software": "curate benchmarks/corpus.py",
                                                     "format": "WARC File Format 1.1", "isPartOf": CRAWL})
    info.rec_headers.replace_header("WARC-Record-ID", _record_id("warcinfo", path.name, seed))
    info.rec_headers.replace_header("WARC-Date", "2024-05-18T00:00:00Z")
    writer.write_record(info)
    for page in pages:
        rng = random.Random(page.record_id)
        date = _warc_date(rng)
        host_path = page.url.split("://", 1)[1]
        host, _, rest = host_path.partition("/")
        request_headers = StatusAndHeaders(f"GET /{rest} HTTP/1.1", [
            ("User-Agent", "CCBot/2.0 (https://commoncrawl.org/faq/)"), ("Accept", "text/html,application/xhtml+xml"),
            ("Accept-Language", "en-US,en;q=0.5"), ("Accept-Encoding", "br,gzip"), ("Host", host),
            ("Connection", "Keep-Alive")], is_http_request=True)
        request = writer.create_warc_record(page.url, "request", payload=io.BytesIO(b""), http_headers=request_headers,
                                            warc_headers_dict={"WARC-Date": date,
                                                               "WARC-Record-ID": _record_id("request", page.record_id)})
        body = page.html.encode("utf-8")
        http_headers = StatusAndHeaders("200 OK", [
            ("Date", "Sat, 18 May 2024 01:58:10 GMT"), ("Server", rng.choice(["nginx", "Apache", "cloudflare"])),
            ("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body))),
            ("Cache-Control", "max-age=300"), ("Vary", "Accept-Encoding")], protocol="HTTP/1.1")
        response = writer.create_warc_record(page.url, "response", payload=io.BytesIO(body), http_headers=http_headers,
                                             warc_headers_dict={
                                                 "WARC-Date": date, "WARC-Record-ID": page.record_id,
                                                 "WARC-IP-Address": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                                                 "WARC-Concurrent-To": _record_id("request", page.record_id),
                                                 "WARC-Identified-Payload-Type": "text/html"})
        metadata = writer.create_warc_record(page.url, "metadata",
                                             payload=io.BytesIO(f"fetchTimeMs: {rng.randint(20, 2000)}\n".encode()),
                                             warc_content_type="application/warc-fields",
                                             warc_headers_dict={"WARC-Date": date,
                                                                "WARC-Record-ID": _record_id("metadata", page.record_id),
                                                                "WARC-Concurrent-To": page.record_id})
        for record in (request, response, metadata):
            writer.write_record(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return len(buffer.getvalue())


def finnish_count(scale: int, share: float) -> int:
    """How many Finnish pages make up `share` of a corpus with the 100 real pages `scale` times."""
    return round(share * 100 * scale / (1 - share))


def corpus_pages(scale: int, seed: int, share: float = DEFAULT_SHARE) -> list[Page]:
    """Every page of the corpus at `scale` with `share` Finnish pages, shuffled (seeded)."""
    pages: list[Page] = []
    for number, (url, html) in enumerate(cc_sample_pages(), start=1):
        for copy in range(scale):
            varied = html if copy == 0 else vary_html(html, random.Random(f"cc:{seed}:{number}:{copy}"))
            pages.append(Page(copy_url(url, copy), varied, "cc", _record_id("cc", seed, number, copy)))
    for index, (url, html) in enumerate(finnish_pages(finnish_count(scale, share), seed)):
        pages.append(Page(url, html, "fin", _record_id("fin", seed, index)))
    random.Random(f"shuffle:{seed}:{scale}").shuffle(pages)
    return pages


def warmup_pages(seed: int) -> list[Page]:
    """A few pages not in the corpus (other variations, other Finnish documents) for warming up a pipeline."""
    rng = random.Random(f"warmup:{seed}")
    samples = cc_sample_pages()
    pages = []
    for number in rng.sample(range(len(samples)), WARMUP_PAGES):
        url, html = samples[number]
        pages.append(Page(copy_url(url, 10_000 + number), vary_html(html, random.Random(f"warmup:{seed}:{number}")),
                          "cc", _record_id("warmup-cc", seed, number)))
    for index, (url, html) in enumerate(finnish_pages(WARMUP_PAGES, seed, start=10**6)):
        pages.append(Page(url, html, "fin", _record_id("warmup-fin", seed, index)))
    return pages


def manifest_path(root: Path) -> Path:
    return Path(root) / "corpus.json"


def load_manifest(root: Path) -> dict:
    return json.loads(manifest_path(root).read_text())


def build_corpus(root: Path, scale: int, seed: int = 0, share: float = DEFAULT_SHARE) -> Path:
    """Write the corpus at `scale` with `share` Finnish pages under `root` as a Common Crawl mirror; return `root`.

    A `root` that already holds the corpus of the same settings and generator version is returned as is."""
    if scale < 1:
        raise ValueError("scale must be at least 1")
    if not 0 < share < 1:
        raise ValueError("share must be between 0 and 1")
    root = Path(root)
    wanted = {"version": CORPUS_VERSION, "scale": scale, "seed": seed, "crawl": CRAWL,
              "finnish_share": share, "replace_share": REPLACE_SHARE}
    if manifest_path(root).is_file():
        try:
            existing = load_manifest(root)
        except json.JSONDecodeError:
            existing = {}
        if {k: existing.get(k) for k in wanted} == wanted and all((root / p).is_file() for p in existing["files"]):
            return root
    started = time.monotonic()
    for stale in (root / "crawl-data", manifest_path(root), root / "collinfo.json"):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    crawl_dir = root / "crawl-data" / CRAWL
    pages = corpus_pages(scale, seed, share)
    files, sizes = [], []
    for number, start in enumerate(range(0, len(pages), RECORDS_PER_FILE)):
        relative = f"crawl-data/{CRAWL}/segments/{SEGMENT}/warc/{CRAWL}-20240518{number:05d}-{seed:05d}.warc.gz"
        sizes.append(write_warc(root / relative, pages[start:start + RECORDS_PER_FILE], seed))
        files.append(relative)
    warmup = f"crawl-data/{CRAWL}/warmup/warmup.warc.gz"
    write_warc(root / warmup, warmup_pages(seed), seed)
    (crawl_dir / "warc.paths.gz").write_bytes(gzip.compress(("\n".join(files) + "\n").encode(), mtime=0))
    (root / "collinfo.json").write_text(json.dumps([{"id": CRAWL, "name": CRAWL.removeprefix("CC-MAIN-")}]))
    manifest = {**wanted, "files": files, "warmup": warmup, "pages": len(pages),
                "cc_pages": sum(p.kind == "cc" for p in pages), "finnish_pages": sum(p.kind == "fin" for p in pages),
                "html_bytes": sum(len(p.html.encode("utf-8")) for p in pages), "warc_bytes": sum(sizes),
                "finnish_ids": sorted(p.record_id for p in pages if p.kind == "fin"),
                "build_seconds": round(time.monotonic() - started, 2)}
    manifest_path(root).write_text(json.dumps(manifest, indent=1))
    return root


# --- a check: are the copies far enough apart for near-dedup? ------------------------------------------------


def _shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + n]) for i in range(max(len(words) - n + 1, 0))}


def check_variation(seed: int = 0, copies: int = 3, pages: int = 30) -> None:
    """Print the word 5-gram Jaccard similarity of the extracted text of copies vs. the original page
    (FineWeb's MinHash dedup pairs documents from ~0.75 up)."""
    from trafilatura import extract

    values = []
    for number, (_, html) in enumerate(cc_sample_pages()[:pages], start=1):
        base = _shingles(extract(html, favor_precision=True, include_comments=False, deduplicate=True) or "")
        if len(base) < 20:
            continue
        for copy in range(1, copies + 1):
            varied = vary_html(html, random.Random(f"cc:{seed}:{number}:{copy}"))
            other = _shingles(extract(varied, favor_precision=True, include_comments=False, deduplicate=True) or "")
            values.append(len(base & other) / max(len(base | other), 1))
    values.sort()
    print(f"5-gram Jaccard, copy vs original, {len(values)} pairs: median {values[len(values) // 2]:.3f}, "
          f"max {values[-1]:.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--scale", type=int, default=1, help="copies of the 100 CC pages (65: ~6,600 pages)")
    parser.add_argument("--share", type=float, default=DEFAULT_SHARE, help="share of Finnish pages (0.01 = 1 %%)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="store_true", help="also measure how far copies are from their original")
    args = parser.parse_args(argv)
    root = build_corpus(args.out_dir, args.scale, args.seed, args.share)
    manifest = load_manifest(root)
    print(f"{root}: {manifest['pages']:,} pages ({manifest['cc_pages']:,} CC sample, {manifest['finnish_pages']:,} "
          f"Finnish) in {len(manifest['files'])} WARCs, {manifest['html_bytes'] / 1e6:,.1f} MB of HTML, "
          f"{manifest['warc_bytes'] / 1e6:,.1f} MB compressed (built in {manifest['build_seconds']} s)")
    if args.check:
        check_variation(args.seed)


if __name__ == "__main__":
    sys.exit(main())
