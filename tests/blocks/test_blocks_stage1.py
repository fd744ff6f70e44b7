"""URL filter, extraction (FineWeb settings, crash-safe) and language ID blocks on real pages and text."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pytest

from curate.errors import UserError
from curate.blocks.extract import Extract, ExtractorProcess
from curate.blocks.lid import LanguageId
from curate.blocks.url_filter import UrlFilter
from curate.language_configs.labels import normalise_label


def test_url_filter_reasons_match_datatrove():
    urls = ["https://yle.fi/uutiset/3-11212601", "http://pornhub.com/view", "https://fi.xvideos.com/x",
            "https://example.org/porn-videos", "https://example.org/a"]
    reasons = UrlFilter()(pa.table({"url": urls}))["drop_reason"].to_pylist()
    assert reasons == [None, "url_filter.domain", "url_filter.domain", "url_filter.hard_blacklisted", None]


def test_extraction_keeps_the_article_and_drops_boilerplate(shared):
    evaluation = json.loads((shared / "data/html/fi/evaldata-fi.json").read_text(encoding="utf-8"))
    pages = list(evaluation.values())
    htmls = [(shared / "data/html/fi" / p["file"]).read_text(encoding="utf-8", errors="replace") for p in pages]
    texts = Extract()(pa.table({"html": htmls}))["text"].to_pylist()
    for page, text in zip(pages, texts):
        for snippet in page["with"]:
            assert snippet in text, (page["file"], snippet)
        for snippet in page["without"]:
            assert snippet not in text, (page["file"], snippet)


def test_a_page_that_kills_the_extractor_is_quarantined_and_the_batch_goes_on(shared, monkeypatch):
    html = (shared / "data/html/fi/yle.fi.3-11212601.html").read_text(encoding="utf-8", errors="replace")
    monkeypatch.setenv("CURATE_FAULT", "extract_crash:POISONOUS-PAGE")
    process = ExtractorProcess("trafilatura", True)
    outcomes = [process.extract(h, 30)[0] for h in (html, "<html><body>POISONOUS-PAGE</body></html>", html)]
    assert outcomes == ["ok", "crashed", "ok"]


def test_a_page_that_hangs_is_timed_out(shared, monkeypatch):
    monkeypatch.setenv("CURATE_FAULT", "extract_hang:ENDLESS")
    process = ExtractorProcess("trafilatura", True)
    html = (shared / "data/html/fi/yle.fi.3-11212601.html").read_text(encoding="utf-8", errors="replace")
    assert process.extract("<html>ENDLESS</html>", 3)[0] == "timeout"
    status, text = process.extract(html, 30)
    assert status == "ok" and "Timo Partonen" in text


def test_extract_block_marks_empty_and_crashed_pages(monkeypatch):
    monkeypatch.setenv("CURATE_FAULT", "extract_crash:BOOM")
    block = Extract(timeout_s=20)
    from curate.blocks import extract as module

    module.extractor_process.cache_clear()
    out = block(pa.table({"html": ["<html><body></body></html>", "<p>BOOM</p>"]}))
    assert out["drop_reason"].to_pylist() == ["extract.empty", "extract.crashed"]
    assert "html" not in out.column_names
    module.extractor_process.cache_clear()


def flores(shared, code: str, n: int = 40) -> list[str]:
    lines = (shared / "data/text/flores200" / f"{code}.txt").read_text(encoding="utf-8").splitlines()
    return [" ".join(lines[i:i + 5]) for i in range(0, 5 * n, 5)]


def test_ft176_identifies_real_flores_text_with_normalised_labels(shared):
    block = LanguageId(model="ft176")
    block.check()
    expected = {"fin_Latn": "fin_Latn", "est_Latn": "ekk_Latn", "swe_Latn": "swe_Latn", "nob_Latn": "nob_Latn",
                "dan_Latn": "dan_Latn", "deu_Latn": "deu_Latn", "rus_Cyrl": "rus_Cyrl", "eng_Latn": "eng_Latn"}
    for flores_code, ours in expected.items():
        out = block(pa.table({"text": flores(shared, flores_code)}))
        labels = out["lid_label"].to_pylist()
        share = labels.count(ours) / len(labels)
        assert share >= (0.8 if ours in ("nob_Latn", "dan_Latn") else 0.95), (flores_code, share)
    out = block(pa.table({"text": flores(shared, "fin_Latn", 3)}))
    row = out.to_pylist()[0]
    assert row["language"] == "fin" and row["language_script"] == "Latn" and row["language_score"] > 0.9
    top = json.loads(row["top_langs"])
    assert list(top)[0] == "fin_Latn_score" and len(top) == 3


def test_real_fasttext_module_keeps_training():
    """No dependency pulls in fasttext-predict, which would replace the real fasttext module (it cannot train)."""
    import fasttext

    assert callable(getattr(fasttext, "train_supervised", None))


def test_labels_normalise_to_iso639_3_and_script():
    assert normalise_label("__label__fi") == "fin_Latn"
    assert normalise_label("__label__et") == "ekk_Latn"
    assert normalise_label("__label__zh") == "cmn_Hani"
    assert normalise_label("__label__fin_Latn") == "fin_Latn"


def test_missing_models_give_one_actionable_line(tmp_path):
    with pytest.raises(UserError, match="not found: give --lid glotlid, ft176 or the path"):
        LanguageId(model=str(tmp_path / "nope.bin")).check()
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        with pytest.raises(UserError, match="cannot load GlotLID from the Hugging Face Hub.*--lid ft176"):
            LanguageId(model="glotlid").check()


def test_warming_starts_the_extractor_and_loads_the_tokenizer():
    """`Block.warm` does ahead of the first batch what `apply` would do on it: the extractor subprocess is started
    (and then serves the first page), the word tokenizer loaded; `warm_blocks` goes on past a block that fails."""
    from curate.blocks import extract as module
    from curate.blocks import words
    from curate.blocks.words import WordTokens
    from curate.language_configs import load_language_config
    from curate.pipeline.execution.nodes import warm_blocks

    module.extractor_process.cache_clear()
    block = Extract(timeout_s=20)
    process = module.extractor_process(block.extractor, block.favour_precision)
    assert process.process is None
    words.load_tokenizer.cache_clear()

    class Broken(UrlFilter):
        def warm(self) -> None:
            raise RuntimeError("no lists here")

    assert warm_blocks([Broken(), block, WordTokens(load_language_config("fin_Latn"))]) == 2
    started = process.process
    assert started is not None and started.poll() is None
    assert words.load_tokenizer.cache_info().currsize == 1
    out = block(pa.table({"html": ["<html><body><p>" + "Kissa istuu puussa ja katselee. " * 20 + "</p></body></html>"]}))
    assert "Kissa istuu puussa" in out["text"][0].as_py()
    assert process.process is started, "the warmed subprocess served the first page"
    module.extractor_process.cache_clear()
    process._kill()
