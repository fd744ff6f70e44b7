"""Toxicity: the LDNOOBW word-list score (spaced and unspaced scripts, lists by path or URL), the fastText
classifier hook, and the adult-domain flag from the URL filter's UT1 list."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from http_server import FaultyServer
from scorers_helpers import LDNOOBW, ldnoobw_words

from curate.errors import UserError
from curate.blocks.model_files import resolve_file
from curate.blocks.score_quality import train_classifier
from curate.blocks.score_toxicity import AdultDomain, ToxicityClassifier, ToxicityLexicon, tokens


def lexicon(language: str, unspaced: bool = False, max_share: float | None = None, words: str | None = None):
    return ToxicityLexicon(words or str(LDNOOBW / language), unspaced, max_share, "test")


def run(block, texts: list[str], **columns) -> pa.Table:
    block.check()
    return block(pa.table({"text": pa.array(texts, pa.string()), **columns}))


def test_share_and_count_on_finnish_words() -> None:
    texts = [
        # 10 tokens; "haista paska" (a two-word entry, not "paska" alone), "HITTO" (casefolded) and "kusi": 3 matches
        # covering 4 tokens; "kusiainen" (an ant) contains "kusi" but is another word
        "Tämä on hyvä päivä, haista paska ja HITTO sekä kusi.",
        "Kusiainen kantaa neulasta.",
        "",
    ]
    out = run(lexicon("fi"), texts)
    assert out["toxicity_count"].to_pylist() == [3, 0, 0]
    assert out["toxicity_share"].to_pylist() == [pytest.approx(4 / 10), 0.0, 0.0]
    assert "drop_reason" not in out.column_names


def test_unspaced_scripts_match_inside_runs_of_letters() -> None:
    text = "这是下三烂的东西"  # 8 characters, one three-character entry
    assert run(lexicon("zh", unspaced=True), [text])["toxicity_share"].to_pylist() == [pytest.approx(3 / 8)]
    assert run(lexicon("zh", unspaced=False), [text])["toxicity_count"].to_pylist() == [0]  # one 8-letter "word"
    assert tokens("กูไม่รู้", unspaced=True)[:2] == ["กู", "ไ"]  # a letter keeps its combining vowel mark


def test_injected_words_are_counted_on_real_finnish(documents) -> None:
    rng = random.Random(0)
    single = [w for w in ldnoobw_words("fi") if " " not in w]
    clean = documents["held"][:40]
    block = lexicon("fi")
    base = run(block, clean)
    injected = []
    for text in clean:
        words = text.split(" ")
        for word in rng.sample(single, 5):
            words.insert(rng.randrange(len(words) + 1), word)
        injected.append(" ".join(words))
    out = run(block, injected)
    extra = np.array(out["toxicity_count"].to_pylist()) - np.array(base["toxicity_count"].to_pylist())
    assert (extra == 5).all()
    sizes = np.array([len(tokens(t, False)) for t in injected])
    covered = np.array(base["toxicity_share"].to_pylist()) * (sizes - 5) + 5
    assert np.allclose(out["toxicity_share"].to_numpy(), covered / sizes)
    assert np.median(base["toxicity_share"].to_numpy()) == 0.0  # clean news and web text: nothing flagged


def test_threshold_drops_above_max_share() -> None:
    out = run(lexicon("fi", max_share=0.2), ["hyvä päivä kaikille tänään", "haista paska", "perkele on sana"])
    assert out["drop_reason"].to_pylist() == [None, "toxicity.share_high", "toxicity.share_high"]


def test_word_list_by_url_is_downloaded_once(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CURATE_CACHE", str(tmp_path / "cache"))
    with FaultyServer(LDNOOBW) as server:
        url = f"{server.url}/fi"
        assert run(lexicon("fi", words=url), ["haista paska"])["toxicity_count"].to_pylist() == [1]
        resolve_file.cache_clear()
        run(lexicon("fi", words=url), ["hitto"])
        assert server.requests == [("fi", "")]  # the second process-level lookup reads the disk cache
        with pytest.raises(UserError) as error:
            lexicon("fi", words=f"{server.url}/xx").check()
    message = str(error.value)
    assert message.startswith("cannot download") and "(test scorers.toxicity.words)" in message
    assert "\n" not in message


def test_missing_word_list_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError) as error:
        lexicon("fi", words="lists/fi-bad-words.txt").check()
    message = str(error.value)
    assert message.startswith("test scorers.toxicity.words: no file 'lists/fi-bad-words.txt'")
    assert "\n" not in message
    (tmp_path / "empty").write_text("# a comment\n\n", encoding="utf-8")
    with pytest.raises(UserError, match="holds no words"):
        lexicon("fi", words=str(tmp_path / "empty")).check()


def test_classifier_hook_scores_toxic_text_higher(documents, tmp_path: Path) -> None:
    rng = random.Random(1)
    words = ldnoobw_words("fi")

    def insult(text: str) -> str:
        parts = text.split(" ")
        for word in rng.sample(words, 6):
            parts.insert(rng.randrange(len(parts) + 1), word)
        return " ".join(parts)

    train, held = documents["train"][::3], documents["held"]  # each training document in both classes
    model = tmp_path / "toxic.bin"
    train_classifier([insult(t) for t in train], train, model, label="__label__toxic", other_label="__label__ok",
                     dim=16, buckets=20_000, lr=1.0, epoch=50, word_ngrams=1)  # the words are the only signal
    block = ToxicityClassifier(str(model), "__label__toxic", 0.5, "fin_Latn")
    out = run(block, held + [insult(t) for t in held])
    scores = out["toxicity_score"].to_numpy()
    clean, toxic = scores[:len(held)], scores[len(held):]
    assert np.median(toxic) >= 0.8 and np.median(clean) <= 0.2
    reasons = out["drop_reason"].to_pylist()
    assert reasons == ["toxicity_classifier.score_high" if s > 0.5 else None for s in scores]


def test_adult_domains_from_the_url_filter_list() -> None:
    urls = ["https://www.pornhub.com/view_video", "https://sub.xhamster.com/", "https://yle.fi/uutiset/3-123",
            None]
    block = AdultDomain()
    block.check()
    out = block(pa.table({"url": pa.array(urls, pa.string())}))
    assert out["adult_domain"].to_pylist() == [True, True, False, False]
    assert list(block.provenance()) == ["url_blocklist_sha256"]
