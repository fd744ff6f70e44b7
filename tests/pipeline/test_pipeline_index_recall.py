"""Recall of the default selection (`--select auto` → index+neighbors) against reading everything, on pages whose
index labels come from CLD2 itself (pycld2 on the page's HTML, as Common Crawl labels it: `mirror.cld2_labels`).

Pages: real cc-sample100 templates with FLORES-200 sentences of six languages, three kinds each: `article` (every
long paragraph, the title and first heading in the language; menus and footer stay the template's), `mixed` (every
other long paragraph) and `minority` (one long paragraph in three: the language is a minority of the page's text),
plus real crawled pages. Both runs take all six languages at once; the recall of each language is the share of
the documents the full run released that the index run released too (`cc_index.recall`), and, apart, the share
that the language's own index+neighbors selection covers (what a run of that language alone would read).
"""

from __future__ import annotations

import gzip
import html as html_lib
import json
import random
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from mirror import Mirror, Record, build_index, cld2_labels, write_warc
from prefilter_pages import FLORES, _PARAGRAPH, _is_long, cc_pages, language_page, templates

from curate.pipeline.execution.run import RunOptions, make_plan, run
from curate.pipeline.sources.cc_index import Selection, recall

CRAWL = "CC-MAIN-2024-22"
# FLORES-200 file stem → our code (FLORES writes Estonian est_Latn)
LANGUAGES = {"fin_Latn": "fin_Latn", "est_Latn": "ekk_Latn", "nob_Latn": "nob_Latn", "deu_Latn": "deu_Latn",
             "rus_Cyrl": "rus_Cyrl", "hrv_Latn": "hrv_Latn"}
KINDS = ("article", "mixed", "minority")
PER_KIND = 4
PARAGRAPHS = (6, 20)  # templates with this many long paragraphs: enough text to pass the filters, within a page's
# own sentences (1,012 FLORES sentences / 12 pages)
CRAWLED = 30  # real cc-sample100 pages, as crawled
MIN_RECALL = 1.0  # measured: every language, both ways (docs/sources.md)


def minority_page(template: str, sentences: list[str], rng: random.Random) -> str:
    """`template` with one long paragraph in three made of `sentences` (title and heading left as they are)."""
    taken = iter(sentences[rng.randrange(len(sentences)):] + sentences)
    seen = 0

    def paragraph(match: re.Match) -> str:
        nonlocal seen
        if not _is_long(match):
            return match.group(0)
        seen += 1
        if seen % 3 != 1:
            return match.group(0)
        text = " ".join(next(taken) for _ in range(rng.randint(2, 4)))
        return match.group(1) + html_lib.escape(text) + match.group(3)

    return _PARAGRAPH.sub(paragraph, template)


def build_pages(root: Path, files: int = 3) -> tuple[Mirror, dict[str, tuple[str, str]]]:
    """The mirror (one crawl, `files` WARCs) and url → (our code, kind) of the built pages."""
    low, high = PARAGRAPHS
    pool = [t for t in templates() if low <= sum(_is_long(m) for m in _PARAGRAPH.finditer(t)) <= high]
    records, built = [], {}
    for stem, code in LANGUAGES.items():
        sentences = [line.strip() for line in (FLORES / f"{stem}.txt").read_text(encoding="utf-8").splitlines()
                     if line.strip()]
        rng = random.Random(stem)
        chosen = rng.sample(pool, len(KINDS) * PER_KIND)
        step = len(sentences) // len(chosen)  # each page its own sentences: no two pages are near-duplicates
        for index, template in enumerate(chosen):
            kind, part = KINDS[index % len(KINDS)], sentences[index * step:(index + 1) * step]
            html = (minority_page(template, part, rng) if kind == "minority"
                    else language_page(template, part, rng, mixed=kind == "mixed"))
            url = f"https://{code.lower().replace('_', '-')}.example.org/{kind}/{index}"
            records.append(Record(url, html.encode("utf-8")))
            built[url] = (code, kind)
    records += [Record(page.url, page.html.encode("utf-8")) for page in cc_pages()[:CRAWLED]]
    random.Random(0).shuffle(records)
    paths = []
    for number in range(files):
        relative = f"crawl-data/{CRAWL}/segments/1715972{number:05d}.0/warc/CC-MAIN-{number:05d}.warc.gz"
        write_warc(root / relative, records[number::files])
        paths.append(relative)
    (root / "crawl-data" / CRAWL / "warc.paths.gz").write_bytes(gzip.compress("\n".join(paths).encode() + b"\n"))
    (root / "collinfo.json").write_text(json.dumps([{"id": CRAWL, "name": CRAWL.removeprefix("CC-MAIN-")}]))
    return Mirror(root, {CRAWL: paths}), built


def settings(root: Path, output: Path, select: str) -> RunOptions:
    return RunOptions(languages=list(LANGUAGES.values()), snapshots=CRAWL, source=str(root), output=str(output),
                      lid="ft176", select=select, files_per_unit=1, buckets=1, num_cpus=2)


def released_urls(output: Path, code: str) -> set[str]:
    return {url for path in sorted((output / code / "data").rglob("*.parquet"))
            for url in pq.read_table(path, columns=["url"])["url"].to_pylist()}


@pytest.fixture(scope="module")
def recall_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cld2-mirror")
    mirror, built = build_pages(root)
    table = build_index(mirror, (CRAWL,), parts=1, labeller=cld2_labels)[CRAWL]
    full_output, auto_output = tmp_path_factory.mktemp("full"), tmp_path_factory.mktemp("auto")
    plan = make_plan(settings(root, auto_output, "auto"))
    run(settings(root, full_output, "full"))
    run(settings(root, auto_output, "auto"))
    labels = {row["url"]: row["content_languages"] or "" for row in table.to_pylist()}
    return {"root": root, "built": built, "labels": labels, "plan": plan, "full": full_output, "auto": auto_output}


def own_selection_recall(runs, code: str) -> tuple[int, int]:
    """(full run's documents of `code`, those `code`'s own index+neighbors selection reads)."""
    selection = Selection.for_run([code], "index+neighbors")
    kept = released_urls(runs["full"], code)
    covered = [url for url in kept if set(runs["labels"][url].split(",")) & set(selection.codes)]
    return len(kept), len(covered)


def test_the_default_reads_through_the_index_for_cld2_languages(recall_runs):
    plan = recall_runs["plan"]
    assert plan.select == "index+neighbors" and plan.select_reason.startswith("auto: Common Crawl's index labels")
    assert sum(f.records for f in plan.files) < sum(f.considered for f in plan.files)


@pytest.mark.parametrize("code", list(LANGUAGES.values()))
def test_the_index_runs_recall_of_each_language(recall_runs, code):
    measured = recall(str(recall_runs["full"]), str(recall_runs["auto"]), code)
    own_full, own_covered = own_selection_recall(recall_runs, code)
    assert measured.full >= PER_KIND, f"{code}: the full run kept too few pages to measure ({measured})"
    assert measured.recall >= MIN_RECALL, f"{code}: {measured}"
    assert own_covered / own_full >= MIN_RECALL, f"{code}: its own selection reads {own_covered} of {own_full}"


def test_pages_where_the_language_is_a_minority_are_measured(recall_runs):
    """Minority pages the full path keeps are in the index run too (some are kept: they count in the figures)."""
    built = recall_runs["built"]
    kept = {url for code in LANGUAGES.values() for url in released_urls(recall_runs["full"], code)}
    index_kept = {url for code in LANGUAGES.values() for url in released_urls(recall_runs["auto"], code)}
    minority = {url for url in kept if built.get(url, ("", ""))[1] == "minority"}
    assert minority and minority <= index_kept
