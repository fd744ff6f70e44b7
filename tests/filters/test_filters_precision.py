"""The precision filter keeps Finnish and drops Estonian, with lists derived from ../shared/data/text."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pyarrow as pa
import pytest
from filters_helpers import SHARED, drop_reasons, run_blocks
from reference_documents import documents_from_sentences

from curate.errors import UserError
from curate.blocks.precision import UrlWhitelist
from curate.blocks.quality import stage1_blocks, stage3_filter_blocks
from curate.blocks.words import WordTokens
from curate.language_configs.filters import FiltersConfig, PrecisionConfig

FLORES = SHARED / "data" / "text" / "flores200"
RELATED = ["est_Latn", "swe_Latn", "nob_Latn", "dan_Latn", "deu_Latn", "eng_Latn"]


def flores_documents(code: str) -> list[str]:
    return documents_from_sentences((FLORES / f"{code}.txt").read_text(encoding="utf-8").splitlines(), seed=2)


@pytest.fixture(scope="module")
def precision_config(fin_config, tmp_path_factory):
    """Finnish words seen at least 3 times in FLORES Finnish and never in the related languages' FLORES."""
    tokens = WordTokens(fin_config)

    def words(code):
        batch = tokens(pa.table({"text": flores_documents(code)}))
        return Counter(w.lower() for doc in batch["words"].to_pylist() for w in doc if w.isalpha())

    elsewhere = set().union(*(words(code) for code in RELATED))
    finnish = sorted(w for w, n in words("fin_Latn").items() if n >= 3 and w not in elsewhere)
    folder = tmp_path_factory.mktemp("precision")
    (folder / "fin_words.txt").write_text("\n".join(finnish) + "\n", encoding="utf-8")
    (folder / "fin_urls.txt").write_text("# ccTLD and names\n.fi\nsuomi\nhelsinki\n", encoding="utf-8")
    settings = PrecisionConfig(word_list=str(folder / "fin_words.txt"), url_whitelist=str(folder / "fin_urls.txt"),
                               url_language_codes=["fi"])
    filters = FiltersConfig(gopher_repetition=None, fineweb_quality=None, gopher_quality=None, precision=settings)
    return dataclasses.replace(fin_config, filters=filters), finnish


def decide(config, texts, urls):
    blocks = stage1_blocks(config) + stage3_filter_blocks(config)
    return drop_reasons(run_blocks(blocks, texts, url=pa.array(urls, pa.string())))


def test_word_list_keeps_finnish_and_drops_estonian(precision_config):
    config, finnish_words = precision_config
    assert len(finnish_words) == 732
    assert {"että", "myös"} <= set(finnish_words)
    assert "ja" not in finnish_words and "oli" not in finnish_words  # Estonian words too
    fin, est = flores_documents("fin_Latn")[:40], flores_documents("est_Latn")[:40]
    urls = ["https://example.com/a"] * 80
    reasons = decide(config, fin + est, urls)
    assert reasons[:40] == [None] * 40
    assert reasons[40:] == ["precision.no_language_evidence"] * 40


def test_url_whitelist_keeps_estonian_text_on_finnish_urls(precision_config):
    config, _ = precision_config
    text = flores_documents("est_Latn")[0]
    urls = ["https://www.uutiset.fi/artikkeli", "https://example.com/fi/uutiset", "http://example.com/?lang=FI",
            "https://example.com/suomi-uutiset", "https://example.com/Helsinki/2024", "https://finance.com/fish",
            "https://example.ee/et/uudised", None]
    assert decide(config, [text] * len(urls), urls) == [None] * 5 + ["precision.no_language_evidence"] * 3


def test_url_whitelist_rules():
    whitelist = UrlWhitelist(domains=(".fi",), codes=("fi",), names=("suomi",))
    assert whitelist.matches("yle.fi/uutiset")  # a country domain, no scheme needed
    assert not UrlWhitelist(domains=(".fi",), codes=(), names=()).matches("https://fi.example.com/")
    assert whitelist.matches("https://fi.example.com/")  # the code as a token: a host label,
    assert whitelist.matches("https://example.com/FI-fi/tuote")  # a path segment (a locale too),
    assert whitelist.matches("https://example.com/a?hl=fi_FI&x=1")  # a language parameter
    for other in ("https://example.com/finland", "https://example.com/FILM-reviews", "https://PROFILE.example.com/",
                  "https://example.com/x-fi-y", "https://example.com/?q=fi", "https://example.com/a.fi.html"):
        assert not whitelist.matches(other), other  # a word that contains the code, or the code in other text
    assert whitelist.matches("https://example.com/Suomi_Uutiset")  # a name, case-insensitive
    assert not whitelist.matches(None)


def test_missing_list_is_one_clear_line(fin_config):
    settings = PrecisionConfig(word_list="no/such/list.txt")
    config = dataclasses.replace(fin_config, filters=FiltersConfig(precision=settings))
    with pytest.raises(UserError, match="precision filter list 'no/such/list.txt' not found"):
        stage1_blocks(config)[-1].check()
