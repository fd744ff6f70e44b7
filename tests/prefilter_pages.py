"""Pages for measuring the LID-first prefilter's recall: real page templates with real text of a language.

Templates are the pages of `shared/data/html/cc-sample100` with at least `MIN_PARAGRAPHS` long paragraphs. A
page of language L takes one and replaces, with consecutive FLORES-200 sentences of L, either every long
paragraph, its title and first heading (`article`: L only in the main content, the navigation, menus and
footer stay in the template's language) or every other long paragraph (`mixed`: half of the main content in
another language, the cases near LID's threshold). FLORES sentences are split in two halves: the prefilter's
defaults were chosen on pages of half 0 (`needed_settings`) and the test asserts them on pages of half 1.
"""

from __future__ import annotations

import html as html_lib
import random
import re
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


from mirror import DATA, Record, write_warc

from curate.blocks.prefilter import page_chunks
from curate.blocks.warc import WarcReader
from curate.pipeline.execution.graph import Graph
from curate.pipeline.execution.stage1 import PrefilterGate, Stage1Work, Unit
from curate.pipeline.execution.storage import Output
from curate.pipeline.execution.streams import read_parts
from curate.pipeline.sources.crawls import WarcFile

FLORES = DATA / "text" / "flores200"
TEMPLATES = DATA / "html" / "cc-sample100"
# FLORES-200 languages curate has a config for, as `file stem: config code` (FLORES writes Estonian est_Latn).
LANGUAGES = {"dan_Latn": "dan_Latn", "deu_Latn": "deu_Latn", "est_Latn": "ekk_Latn", "fin_Latn": "fin_Latn",
             "nob_Latn": "nob_Latn", "rus_Cyrl": "rus_Cyrl", "swe_Latn": "swe_Latn"}
MIN_PARAGRAPHS = 3
CRAWL = "CC-MAIN-2024-22"

_PARAGRAPH = re.compile(r"(<p\b[^>]*>)(.*?)(</p\s*>)", re.S | re.I)
_MARKUP = re.compile(r"(<!--.*?-->|<script\b.*?</script\s*>|<style\b.*?</style\s*>|<[^>]*>)", re.S | re.I)
_TITLE = re.compile(r"(<title\b[^>]*>)(.*?)(</title\s*>)", re.S | re.I)
_H1 = re.compile(r"(<h1\b[^>]*>)(.*?)(</h1\s*>)", re.S | re.I)


def flores_half(stem: str, half: int) -> list[str]:
    """Half `half` (0: the first, 1: the second) of the FLORES-200 sentences of `stem`."""
    lines = [line.strip() for line in (FLORES / f"{stem}.txt").read_text(encoding="utf-8").splitlines()]
    middle = len(lines) // 2
    return [line for line in (lines[:middle] if half == 0 else lines[middle:]) if line]


def templates() -> list[str]:
    """The cc-sample100 pages with at least `MIN_PARAGRAPHS` paragraphs of 60+ visible characters."""
    found = []
    for path in sorted(TEMPLATES.glob("*.html"), key=lambda p: int(p.stem)):
        page = path.read_bytes().decode("utf-8", "replace")
        if sum(_is_long(m) for m in _PARAGRAPH.finditer(page)) >= MIN_PARAGRAPHS:
            found.append(page)
    return found


def _is_long(match: re.Match) -> bool:
    return len(_MARKUP.sub("", match.group(2)).strip()) >= 60


def language_page(template: str, sentences: list[str], rng: random.Random, mixed: bool) -> str:
    """`template` with its long paragraphs (every other one if `mixed`) made of runs of `sentences`."""
    start = rng.randrange(len(sentences))
    taken = iter(sentences[start:] + sentences[:start])
    long_seen = 0

    def paragraph(match: re.Match) -> str:
        nonlocal long_seen
        if not _is_long(match):
            return match.group(0)
        long_seen += 1
        if mixed and long_seen % 2 == 0:
            return match.group(0)
        text = " ".join(next(taken) for _ in range(rng.randint(2, 4)))
        return match.group(1) + html_lib.escape(text) + match.group(3)

    page = _PARAGRAPH.sub(paragraph, template)
    if mixed:
        return page
    title = html_lib.escape(next(taken))
    page = _TITLE.sub(lambda m: m.group(1) + title + m.group(3), page, count=1)
    return _H1.sub(lambda m: m.group(1) + title + m.group(3), page, count=1)


@dataclass(frozen=True)
class Page:
    url: str
    html: str
    language: str  # the config code of the injected text; "" for an unchanged cc-sample page


def pages(half: int, per_language: int) -> list[Page]:
    """`per_language` pages of each language (alternately article and mixed) from FLORES half `half`."""
    pool = templates()
    built = []
    for stem, code in LANGUAGES.items():
        sentences = flores_half(stem, half)
        rng = random.Random(f"{stem}:{half}")
        for index, template in enumerate(rng.sample(pool, per_language)):
            kind = "mixed" if index % 2 else "article"
            built.append(Page(f"https://{code.lower()}.example.org/{half}/{kind}/{index}",
                              language_page(template, sentences, rng, mixed=kind == "mixed"), code))
    return built


def cc_pages() -> list[Page]:
    """The 100 real pages as crawled (no injected text)."""
    return [Page(f"https://cc-sample.example.net/{path.stem}", path.read_bytes().decode("utf-8", "replace"), "")
            for path in sorted(TEMPLATES.glob("*.html"), key=lambda p: int(p.stem))]


def write_pages(path: Path, built: list[Page]) -> Path:
    write_warc(path, [Record(page.url, page.html.encode("utf-8")) for page in built])
    return path


def run_stage1(graph: Graph, warc: Path, out: Path) -> tuple[dict[str, set[str]], Counter]:
    """Stage 1 of `graph` on one WARC: the URLs each language keeps, and the unit's counts (the prefilter on
    every page, never stepping aside: what it keeps is what is measured)."""
    result = Stage1Work(graph, "", str(out), WarcReader(), prefilter_gate=PrefilterGate(max_pass_share=1.0, max_cld2_pass_share=1.0)).run(Unit("u", (WarcFile(CRAWL, str(warc)),)))
    kept = {}
    for code, parts in result.kept_parts.items():
        kept[code] = set(read_parts(Output(str(out)), parts, ["url"])["url"].to_pylist())
    return kept, Counter(result.counts)


def train_glotlid_format_model(out: Path, half: int = 0) -> Path:
    """A small fastText LID model with GlotLID's labels (`__label__fin_Latn`, `__label__ekk_Latn`), trained on
    FLORES-200 half `half` of every language in `shared/data/text/flores200`."""
    import fasttext

    from curate.blocks.score_quality import MIN_TRAIN_THREADS

    lines = []
    for path in sorted(FLORES.glob("*.txt")):
        label = LANGUAGES.get(path.stem, path.stem)
        lines += [f"__label__{label} {sentence}" for sentence in flores_half(path.stem, half)]
    random.Random(0).shuffle(lines)
    with tempfile.TemporaryDirectory() as folder:
        train = Path(folder) / "train.txt"
        train.write_text("\n".join(lines) + "\n", encoding="utf-8")
        model = fasttext.train_supervised(input=str(train), epoch=10, lr=0.5, dim=32, minn=2, maxn=4, minCount=1,
                                          bucket=200_000, seed=0, thread=MIN_TRAIN_THREADS, verbose=0)
    model.save_model(str(out))
    return out


def best_chunks(graph: Graph, built: list[Page]) -> list[tuple[float, int]]:
    """For each page, the highest probability the prefilter's LID gives its language on one of its chunks, and
    the language's rank (1 = top) there; (0.0, 0) when no chunk has it among the model's labels."""
    pages = [page_chunks(page.html) for page in built]
    labels, scores = graph.lid.predict([chunk for chunks in pages for chunk in chunks], k=-1)
    found, start = [], 0
    for page, chunks in zip(built, pages):
        rows = zip(labels[start:start + len(chunks)], scores[start:start + len(chunks)])
        start += len(chunks)
        found.append(max(((float(s[l.index(page.language)]), l.index(page.language) + 1)
                          for l, s in rows if page.language in l), default=(0.0, 0)))
    return found


def needed_settings(half: int, per_language: int, work: Path) -> dict[str, dict[str, tuple[float, int]]]:
    """Per model and language, over the pages of FLORES half `half` that stage 1 without the prefilter keeps:
    the lowest best-chunk probability and the highest rank a prefilter must accept to keep them all."""
    from curate.pipeline.execution.graph import build_graph

    built = pages(half, per_language)
    warc = write_pages(work / f"half{half}.warc.gz", built)
    model = train_glotlid_format_model(work / "glotlid-format.bin")
    needed: dict[str, dict[str, tuple[float, int]]] = {}
    for name in ("ft176", "glotlid"):
        graph = build_graph(sorted(LANGUAGES.values()), lid=name, prefilter=False)
        if name == "glotlid":
            graph.lid.model_path = str(model)
        kept, _ = run_stage1(graph, warc, work / f"out-{name}")
        for page, (score, rank) in zip(built, best_chunks(graph, built)):
            if page.url in kept.get(page.language, ()):
                low, high = needed.setdefault(name, {}).get(page.language, (1.0, 0))
                needed[name][page.language] = (min(low, score), max(high, rank))
    return needed


if __name__ == "__main__":  # how the shipped `lid.prefilter` defaults were chosen (docs/performance.md)
    import json
    import sys

    with tempfile.TemporaryDirectory() as folder:
        print(json.dumps(needed_settings(0, int(sys.argv[1]) if len(sys.argv) > 1 else 28, Path(folder)), indent=1))
