"""A Common Crawl mirror of pages in every FLORES-200 language: real cc-sample100 templates whose long paragraphs,
title and first heading are consecutive FLORES-200 half-0 sentences of the language (`shared/data/text/
flores200-half0`, 194 languages), a few pages each, in one crawl (tests of `--lang all`, benchmarks/all_languages.py).
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from mirror import DATA, Record, write_warc
from prefilter_pages import _PARAGRAPH, _is_long, language_page, templates

HALF0 = DATA / "text" / "flores200-half0"
CRAWL = "CC-MAIN-2024-22"
MIN_SENTENCES = 100
MAX_PARAGRAPHS = 40  # templates with at most this many long paragraphs (a page of a few KB of text)


def config_code(stem: str) -> str | None:
    """The config code of a FLORES file (`est_Latn` → ekk_Latn, `cmn_Hans` → cmn_Hani), None without a config."""
    from curate.language_configs import ConfigError
    from curate.language_configs.lid_thresholds import reference_files
    from curate.language_configs.schema import available_languages

    available = set(available_languages())
    if stem in available:
        return stem
    language = stem.split("_")[0]
    try:
        candidates = [c for c in available if c.split("_")[0] == language]
        candidates += [c for c in available if c.split("_")[0] != language]
        found = [c for c in candidates if reference_files([HALF0], [c]).get(c) == HALF0 / f"{stem}.txt"]
    except ConfigError:
        return None
    return found[0] if found else None


@dataclass
class LanguagesMirror:
    root: Path
    pages: dict[str, list[str]] = field(default_factory=dict)  # config code → its page URLs


def build_languages_mirror(root: Path, per_language: int = 2, files: int = 2, seed: int = 0) -> LanguagesMirror:
    """`per_language` pages of each FLORES half-0 language with a config, shuffled into `files` WARCs of one
    crawl, with the crawl's listing and `collinfo.json`."""
    pool = [t for t in templates() if sum(_is_long(m) for m in _PARAGRAPH.finditer(t)) <= MAX_PARAGRAPHS]
    records: list[Record] = []
    mirror = LanguagesMirror(root)
    for path in sorted(HALF0.glob("*.txt")):
        code = config_code(path.stem)
        if code is None or code in mirror.pages:
            continue
        sentences = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if len(sentences) < MIN_SENTENCES:  # a placeholder file (FLORES' cmn_Hans is missing from the sample)
            continue
        rng = random.Random(f"{path.stem}:{seed}")
        for index, template in enumerate(rng.sample(pool, per_language)):
            url = f"https://{code.lower().replace('_', '-')}.example.org/{index}"
            records.append(Record(url, language_page(template, sentences, rng, mixed=False).encode("utf-8")))
            mirror.pages.setdefault(code, []).append(url)
    random.Random(seed).shuffle(records)
    paths = []
    for number in range(files):
        relative = f"crawl-data/{CRAWL}/segments/1715971{number:05d}.0/warc/CC-MAIN-{number:05d}.warc.gz"
        write_warc(root / relative, records[number::files], identified=True)
        paths.append(relative)
    listing = root / "crawl-data" / CRAWL / "warc.paths.gz"
    listing.write_bytes(gzip.compress("\n".join(paths).encode() + b"\n"))
    (root / "collinfo.json").write_text(json.dumps([{"id": CRAWL, "name": CRAWL.replace("CC-MAIN-", "")}]))
    return mirror
