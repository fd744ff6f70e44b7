"""Reference corpora for calibration: reading documents, and building documents from sentence-per-line text.

`read_reference(paths)` reads Parquet or JSONL files with a `text` column, or plain text files whose documents
are separated by blank lines. `web_documents(sentences)` builds documents the way a language's text reaches LID on the web: of web length,
with the boilerplate that extraction leaves around the text (menus, cookie banners, dates, English navigation).
"""

from __future__ import annotations

import gzip
import json
import math
import random
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from curate.language_configs.validate import ConfigError

_BLANK_LINES = re.compile(r"\n[ \t]*\n")


def _texts_from_parquet(path: Path) -> Iterator[str]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if "text" not in table.column_names:
        raise ConfigError(f"{path}: no `text` column (columns: {', '.join(table.column_names)})")
    yield from (t for t in table["text"].to_pylist() if t)


def _texts_from_jsonl(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise ConfigError(f"{path}:{number}: not a JSON object") from None
            if not isinstance(record, dict) or "text" not in record:
                raise ConfigError(f"{path}:{number}: a JSONL reference needs a `text` field on every line")
            if record["text"]:
                yield record["text"]


def _texts_from_text(path: Path) -> Iterator[str]:
    content = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    for document in _BLANK_LINES.split(content):
        if document.strip():
            yield document.strip("\n")


def read_reference(paths: Iterable[str | Path]) -> list[str]:
    """The documents of reference files: `.parquet`, `.jsonl` / `.json` / `.jsonl.gz` (a `text` column or
    field), anything else as text with documents separated by blank lines."""
    documents: list[str] = []
    for path in map(Path, paths):
        if not path.is_file():
            raise ConfigError(f"reference file {path} not found")
        name = path.name.lower()
        try:
            if name.endswith(".parquet"):
                documents += _texts_from_parquet(path)
            elif re.search(r"\.jsonl?(\.gz)?$", name):
                documents += _texts_from_jsonl(path)
            else:
                documents += _texts_from_text(path)
        except UnicodeDecodeError as error:
            raise ConfigError(f"{path}: not UTF-8 text (byte {error.start} is not): convert it first, e.g. "
                              f"`iconv -f windows-1252 -t utf-8 {path.name}`") from None
        except (OSError, EOFError, ValueError) as error:  # a damaged gzip or Parquet file (ArrowInvalid)
            raise ConfigError(f"{path}: cannot be read as a reference file ({error})") from None
    if not documents:
        raise ConfigError("the reference files hold no documents")
    return documents


# What extraction leaves around a page's text: navigation (mostly English, as on most sites' templates), cookie and
# newsletter banners, and language-neutral lines (dates, times, prices, phone numbers, addresses, ratings).
NAVIGATION = ("Home", "Home | About us | Contact", "Skip to content", "Menu", "Search", "Login | Register",
              "Home › News", "Share on Facebook", "Tweet", "Print", "Read more", "Read more »", "Back to top",
              "Related posts", "Tags:", "Comments (0)", "Leave a comment", "Next article »", "« Previous",
              "Subscribe", "Facebook Twitter Instagram YouTube", "Privacy Policy | Terms of Use", "Sitemap",
              "Cart (0)", "Sign in", "FAQ", "Contact us", "Newsletter", "Share this:")
BANNERS = ("We use cookies to improve your experience on our website. By continuing to browse, you agree to our use "
           "of cookies.",
           "This website uses cookies to ensure you get the best experience. Accept all cookies Manage preferences",
           "Subscribe to our newsletter and never miss an update. Enter your email address Subscribe",
           "© 2024 All rights reserved. Powered by WordPress.")
WEB_SENTENCES = (2, 40)
"""Sentences of text per web document, drawn log-uniformly: about 40 to 900 words of FLORES-200 sentences."""
WEB_BOILERPLATE_LINES = (0, 5)
"""Boilerplate lines above the text and, drawn again, below it."""


def _neutral_line(rng: random.Random) -> str:
    """A line without words of any language: a date, a time stamp, a price, a phone number, a host, a rating."""
    return rng.choice([
        f"{rng.randint(1, 28)}.{rng.randint(1, 12)}.{rng.randint(2010, 2024)}",
        f"{rng.randint(2010, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:"
        f"{rng.randint(0, 59):02d}",
        f"+{rng.randint(1, 99)} {rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
        f"www.example{rng.randint(1, 99)}.com", f"{rng.randint(5, 500)},{rng.randint(0, 99):02d} €", "|", "★★★★☆",
        f"#{rng.randint(1, 999)}"])


def _boilerplate_line(rng: random.Random) -> str:
    draw = rng.random()
    if draw < 0.6:
        return rng.choice(NAVIGATION)
    return _neutral_line(rng) if draw < 0.85 else rng.choice(BANNERS)


def web_documents(sentences: Iterable[str], count: int = 1000, seed: int = 0) -> list[str]:
    """`count` web-like documents of a language from its sentences (in order, as articles run): each a window of
    consecutive sentences (`WEB_SENTENCES`, log-uniform) in paragraphs of 1-4 sentences, between 0-5
    boilerplate lines above and 0-5 below (`NAVIGATION`, `BANNERS`, neutral lines: 60/15/25 %), drawn with
    `seed`."""
    pool = [s.strip() for s in sentences if s.strip()]
    if not pool:
        raise ConfigError("no sentences to build documents from")
    rng = random.Random(seed)
    low, high = WEB_SENTENCES
    documents = []
    for _ in range(count):
        size = round(math.exp(rng.uniform(math.log(low), math.log(high))))
        start = rng.randrange(len(pool))
        window = [pool[(start + i) % len(pool)] for i in range(size)]
        paragraphs, index = [], 0
        while index < len(window):
            step = rng.randint(1, 4)
            paragraphs.append(" ".join(window[index: index + step]))
            index += step
        above = [_boilerplate_line(rng) for _ in range(rng.randint(*WEB_BOILERPLATE_LINES))]
        below = [_boilerplate_line(rng) for _ in range(rng.randint(*WEB_BOILERPLATE_LINES))]
        documents.append("\n".join(above + paragraphs + below))
    return documents
