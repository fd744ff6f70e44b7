"""The LID-first prefilter (CLD2 on the HTML, then the run's LID model on the page's text) keeps every document
the full stage 1 keeps (measured, per language and LID model), skips pages of other languages without storing
them, and is switched by `lid.prefilter` and `--no-prefilter`.

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

from curate.blocks.prefilter import CHUNK_CHARS, Prefilter, cld2_detect, page_chunks
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
    """With lid.176, exactly the full path's documents. The 13-label test model also labels crawled pages of
    languages it does not know (a Korean page, an English one) as one of its 13, and the full path keeps them:
    the cascade's CLD2 pass rules those out, and nothing else."""
    built = {page.url: page for page in corpus[1]}
    for code in CODES:
        kept_by_full = {url for url in runs["full"][code] if built[url].language == code}
        articles = {url for url in kept_by_full if "/article/" in url}
        # the pages are the language: at least half of the article pages pass LID (the mixed pages, half of their
        # text in another language, sit near the language's own LID threshold and may not)
        assert len(articles) >= PAGES_PER_LANGUAGE // 4, (runs["model"], code)
        assert kept_by_full <= runs["cascade"][code] <= runs["full"][code], (runs["model"], code)
        ruled_out = runs["full"][code] - runs["cascade"][code]
        if runs["model"] == "ft176":
            assert not ruled_out, code
        for url in ruled_out:
            reliable, _, top, _ = cld2_detect(built[url].html)
            assert not built[url].language and reliable and top[0][1] not in ("da", "de", "et", "fi", "no", "ru", "sv")
    assert runs["counts"]["extract.empty"] <= runs["full_counts"]["extract.empty"]


def test_pages_of_other_languages_are_skipped_counted_and_not_stored(runs, corpus):
    by_cld2, by_lid = runs["counts"]["prefilter.cld2_other_language"], runs["counts"]["prefilter.other_language"]
    cc = sum(not page.language for page in corpus[1])
    assert by_cld2 >= cc // 2 and by_lid > 0  # CLD2 rules out most crawled pages; the LID pass some of the rest
    removed = list(runs["out"].rglob("removed/stage1/*.parquet"))
    reasons = {r for path in removed for r in pq.read_table(path, columns=["drop_reason"])["drop_reason"].to_pylist()}
    assert not any(reason.startswith("prefilter.") for reason in reasons)


def test_each_language_alone_keeps_its_documents(runs, corpus):
    """A single-language run's prefilter (only its own rule) accepts every page of the language that the full
    path keeps (the 13-label test model also gives some cc-sample pages of other languages a configured label)."""
    built = {page.url: page for page in corpus[1]}
    for code in CODES:
        prefilter = prefilter_of(run_graph(runs["model"], corpus, languages=[code]))
        assert prefilter.cld2  # both passes
        kept = sorted(url for url in runs["full"][code] if built[url].language == code)
        reasons = prefilter(pa.table({"html": [built[url].html for url in kept]}))["drop_reason"].to_pylist()
        assert reasons == [None] * len(kept), (runs["model"], code, [u for u, r in zip(kept, reasons) if r])


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


def test_the_cld2_pass_rules_out_only_pages_it_is_sure_of():
    """CLD2 on the HTML drops a page (`prefilter.cld2_other_language`) only when it read enough text, is sure,
    and names no run language or close relative; every other page goes on to the LID pass."""
    import pycld2
    from prefilter_pages import flores_half

    from curate.blocks.prefilter import MIN_CLD2_TEXT_BYTES, cld2_candidates
    from curate.language_configs.cld2 import detected_as

    def page(stem: str, sentences: int = 12, extra: str = "") -> str:
        text = " ".join(flores_half(stem, TEST_HALF)[:sentences])
        return f"<html><head><script>var x = 'ignored';</script></head><body><p>{text}</p>{extra}</body></html>"

    prefilter = prefilter_of(build_graph(["fin"], lid="ft176"))
    assert prefilter.cld2 == detected_as(["fin_Latn"]) == ("et", "fi")  # Finnish and Estonian, its relative
    english, estonian = page("eng_Latn"), page("est_Latn")
    short = f"<html><body><p>{flores_half('eng_Latn', TEST_HALF)[0]}</p></body></html>"
    assert len(short) < MIN_CLD2_TEXT_BYTES
    in_english = page("eng_Latn", extra=f"<p>{' '.join(flores_half('fin_Latn', TEST_HALF)[:2])}</p>")
    controls = page("eng_Latn", extra="<p>\x01\ufffe</p>")
    with pytest.raises(pycld2.error):  # read again with those characters as spaces
        pycld2.detect(controls, isPlainText=False)
    assert list(cld2_candidates([english, estonian, short, in_english, controls, ""], prefilter.cld2)) == [
        False, True, True, True, False, True]
    reasons = prefilter(pa.table({"html": [english, page("fin_Latn"), estonian]}))["drop_reason"].to_pylist()
    assert reasons == ["prefilter.cld2_other_language", None, "prefilter.other_language"]  # LID: not Finnish
    # a run with a language CLD2 does not detect reads every page with its LID model only
    assert detected_as(["fin_Latn", "gsw_Latn"]) is None
    assert prefilter_of(build_graph(["fin", "gsw"], lid="glotlid")).cld2 == ()


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
    from curate.pipeline.publishing.report import _removal_part, funnel

    shared = {"url_filter.domain": 2, "prefilter.cld2_other_language": 80, "prefilter.other_language": 10,
              "prefilter.stepped_aside": 5, "extract.empty": 1}  # the pages it stepped aside for went on
    assert funnel({"documents_read": 100, "shared": shared}) == [
        ("documents read", 100), ("after URL filter", 98), ("after LID prefilter", 8), ("after extraction", 7)]
    removals = _removal_part({"documents_read": 100, "shared": shared})
    assert "prefilter.cld2_other_language" in removals and "prefilter.stepped_aside" not in removals
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
    assert counts["prefilter.other_language"] == counts["prefilter.cld2_other_language"] == 0
