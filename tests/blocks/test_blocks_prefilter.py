"""The LID-first prefilter keeps every document the full stage 1 keeps (measured, per language and LID model),
skips pages of other languages without storing them, and is switched by `lid.prefilter` and `--no-prefilter`.

Pages: real cc-sample100 templates with FLORES-200 text of the seven configured FLORES languages injected
(tests/prefilter_pages.py), from the half of the sentences the defaults were *not* chosen on, plus the 100
real pages as crawled. Models: lid.176 and a small fastText model with GlotLID's labels trained on the other
half of FLORES-200, run under the configs' `glotlid` settings.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefilter_pages import LANGUAGES, Page, cc_pages, pages, run_stage1, train_glotlid_format_model, write_pages

from curate.blocks.prefilter import CHUNK_CHARS, Prefilter, page_chunks
from curate.language_configs import ConfigError
from curate.language_configs.lid import LidConfig, PrefilterSettings
from curate.language_configs.schema import load_language_config
from curate.language_configs.validate import from_dict
from curate.pipeline.execution import graph as graph_module
from curate.pipeline.execution.graph import Graph, build_graph

CODES = sorted(LANGUAGES.values())
PAGES_PER_LANGUAGE = 20
TEST_HALF = 1  # the defaults were chosen on half 0 (`python tests/prefilter_pages.py`)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[Page], Path]:
    work = tmp_path_factory.mktemp("prefilter")
    built = pages(TEST_HALF, PAGES_PER_LANGUAGE) + cc_pages()
    return write_pages(work / "pages.warc.gz", built), built, train_glotlid_format_model(work / "glotlid.bin")


def run_graph(model: str, corpus, languages: list[str] = CODES, **options) -> Graph:
    """The graph of a run of `languages` with `model`; `glotlid` is the GlotLID-format test model."""
    graph = build_graph(languages, lid=model, **options)
    if model == "glotlid":
        graph.lid.model = str(corpus[2])  # GlotLID's settings, the test's GlotLID-format model
    return graph


@pytest.fixture(scope="module", params=["ft176", "glotlid"])
def runs(request, corpus, tmp_path_factory) -> dict:
    """Stage 1 of one run of all seven languages, without and with the prefilter (the defaults)."""
    work = tmp_path_factory.mktemp(f"stage1-{request.param}")
    full, full_counts = run_stage1(run_graph(request.param, corpus, prefilter=False), corpus[0], work / "full")
    cascade_graph = run_graph(request.param, corpus)
    cascade, counts = run_stage1(cascade_graph, corpus[0], work / "cascade")
    return {"model": request.param, "full": full, "full_counts": full_counts, "cascade": cascade,
            "counts": counts, "out": work / "cascade"}


def test_the_cascade_keeps_every_document_the_full_path_keeps(runs, corpus):
    built = {page.url: page for page in corpus[1]}
    for code in CODES:
        kept_by_full = {url for url in runs["full"][code] if built[url].language == code}
        articles = {url for url in kept_by_full if "/article/" in url}
        # the pages are the language: at least half of the article pages pass LID (the mixed pages, half of their
        # text in another language, sit near the language's own LID threshold and may not)
        assert len(articles) >= PAGES_PER_LANGUAGE // 4, (runs["model"], code)
        assert runs["cascade"][code] == runs["full"][code], (runs["model"], code)
    assert runs["counts"]["extract.empty"] <= runs["full_counts"]["extract.empty"]


def test_pages_of_other_languages_are_skipped_counted_and_not_stored(runs, corpus):
    skipped = runs["counts"]["prefilter.other_language"]
    cc = sum(not page.language for page in corpus[1])
    assert skipped > 0
    if runs["model"] == "ft176":  # lid.176 knows the cc sample's languages; the test model knows 13
        assert skipped >= cc // 2
    removed = list(runs["out"].rglob("removed/stage1/*.parquet"))
    reasons = {r for path in removed for r in pq.read_table(path, columns=["drop_reason"])["drop_reason"].to_pylist()}
    assert "prefilter.other_language" not in reasons


def test_each_language_alone_keeps_its_documents(runs, corpus):
    """A single-language run's prefilter (only its own rule) accepts every page of the language that the full
    path keeps (the 13-label test model also gives some cc-sample pages of other languages a configured label)."""
    built = {page.url: page for page in corpus[1]}
    for code in CODES:
        prefilter = prefilter_of(run_graph(runs["model"], corpus, languages=[code]))
        kept = sorted(url for url in runs["full"][code] if built[url].language == code)
        accepted = prefilter.candidates([page_chunks(built[url].html) for url in kept])
        assert accepted.all(), (runs["model"], code, [url for url, ok in zip(kept, accepted) if not ok])


def prefilter_of(graph: Graph) -> Prefilter:
    found = [block for block in graph.shared if isinstance(block, Prefilter)]
    assert len(found) == 1
    return found[0]


def test_a_multi_language_run_shares_one_pass(corpus):
    graph = build_graph(["fin", "deu"], lid="ft176")
    names = [block.name for block in graph.shared]
    assert names == ["url_filter", "prefilter", "extract"]
    assert [rule.labels for rule in prefilter_of(graph).rules] == [("fin_Latn",), ("deu_Latn",)]
    chunks = [page_chunks(page.html) for page in corpus[1] if page.language == "fin_Latn"]
    chunks = [page for page in chunks if page][:4]  # pages with text (a page without any goes on to extraction)
    assert prefilter_of(graph).candidates(chunks).all()
    assert not prefilter_of(build_graph(["deu"], lid="ft176")).candidates(chunks).any()


def test_chunks_hold_consecutive_lines_of_the_whole_page():
    html = "<html><body><nav>" + "<a href='/'>Home</a>" * 3 + "</nav>" + "".join(
        f"<p>{'Sentence number %d is here. ' % i * 10}</p>" for i in range(3)) + "</body></html>"
    chunks = page_chunks(html)
    assert chunks[0].startswith("Home") and all(len(c) >= CHUNK_CHARS for c in chunks[:-1])
    assert " ".join(chunks).count("Sentence number 2") == 10
    assert page_chunks("") == [] and page_chunks("<html><body></body></html>") == []
    prefilter = prefilter_of(build_graph(["fin"], lid="ft176"))
    assert prefilter(pa.table({"html": ["<html></html>"]}))["drop_reason"].to_pylist() == [None]  # extraction decides


def test_the_prefilter_is_switched_off_by_config_flag_or_a_model_without_settings(monkeypatch):
    assert not any(isinstance(b, Prefilter) for b in build_graph(["fin"], lid="ft176", prefilter=False).shared)
    config = load_language_config("fin_Latn")
    off = dataclasses.replace(config, lid=dataclasses.replace(config.lid, prefilter=None))
    assert graph_module.prefilter_rules([config], "ft176") is not None
    assert graph_module.prefilter_rules([config, off], "ft176") is None  # one language without: every page
    assert graph_module.prefilter_rules([config], "/models/custom-lid.bin") is None  # no `custom` entry
    settings = {"prefilter": {"ft176": {"top_k": 2, "min_score": 0.5, "also": ["nno_Latn"]}}}
    related = from_dict(LidConfig, settings, "lid")
    assert related.prefilter == {"ft176": PrefilterSettings(2, 0.5, ["nno_Latn"])}
    rule = graph_module.prefilter_rules([dataclasses.replace(config, lid=related)], "ft176")[0]
    assert rule.labels == ("fin_Latn", "nno_Latn") and rule.top_k == 2
    with pytest.raises(ConfigError, match=r"lid.prefilter.ft176: missing key 'min_score'"):
        from_dict(LidConfig, {"prefilter": {"ft176": {"top_k": 3}}}, "lid")
    assert from_dict(LidConfig, {"prefilter": None}, "lid").prefilter is None


def test_no_prefilter_reaches_the_run(monkeypatch):
    from typer.testing import CliRunner

    from curate.pipeline.cli.main import app
    from curate.pipeline.execution import run as run_module
    from curate.pipeline.execution.driver import RunStats

    seen = {}

    def fake_run(options, graph=None, display=None) -> RunStats:
        seen["prefilter"] = options.prefilter
        return RunStats({})

    monkeypatch.setattr(run_module, "run", fake_run)
    for flags, expected in (([], True), (["--no-prefilter"], False)):
        seen.clear()
        result = CliRunner().invoke(app, ["run", "--lang", "fin", "--snapshots", "2024-22", *flags])
        assert result.exit_code == 0, result.output
        assert seen == {"prefilter": expected}


def test_the_report_funnel_shows_the_prefilter():
    from curate.pipeline.publishing.report import funnel

    shared = {"url_filter.domain": 2, "prefilter.other_language": 90, "extract.empty": 1}
    assert funnel({"documents_read": 100, "shared": shared}) == [
        ("documents read", 100), ("after URL filter", 98), ("after LID prefilter", 8), ("after extraction", 7)]
    assert [name for name, _ in funnel({"documents_read": 10, "shared": {"extract.empty": 1}})] == [
        "documents read", "after URL filter", "after extraction"]  # runs without the cascade: as before


def test_an_article_after_long_navigation_in_another_language_is_kept(tmp_path):
    """The cascade reads chunks spread over the whole page text: a Finnish article after 25,000 characters of
    English navigation is kept by the cascade as by the full path (reading only the first 20,000 missed it)."""
    from prefilter_pages import flores_half

    english, finnish = flores_half("eng_Latn", TEST_HALF), flores_half("fin_Latn", TEST_HALF)
    links, size = [], 0
    for number, sentence in enumerate(english):
        links.append(f"<li><a href='/section/{number}'>{sentence}</a></li>")
        size += len(sentence) + 1
        if size > 25_000:
            break
    article = "".join(f"<p>{' '.join(finnish[i:i + 3])}</p>" for i in range(0, 24, 3))
    html = (f"<html><head><title>{finnish[30]}</title></head><body><nav><ul>{''.join(links)}</ul></nav>"
            f"<main><article><h1>{finnish[30]}</h1>{article}</article></main></body></html>")
    chunks = page_chunks(html)
    assert " ".join(chunks).index(finnish[0]) > 25_000  # the article starts after the first 25,000 characters
    warc = write_pages(tmp_path / "long.warc.gz", [Page("https://long-nav.example.fi/a", html, "fin_Latn")])
    full, _ = run_stage1(build_graph(["fin"], lid="ft176", prefilter=False), warc, tmp_path / "full")
    cascade, counts = run_stage1(build_graph(["fin"], lid="ft176"), warc, tmp_path / "cascade")
    assert full["fin_Latn"] == cascade["fin_Latn"] == {"https://long-nav.example.fi/a"}
    assert counts["prefilter.other_language"] == 0
