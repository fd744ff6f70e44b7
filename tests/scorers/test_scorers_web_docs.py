"""The model-free web-docs score: its formula on documents built to known ratios, and its ranking of real Finnish
above boilerplate made from it (with the documents' real LID scores)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scorers_helpers import lid_scores

from curate.blocks.score_web_docs import WebDocsScore, char_classes, web_docs_scores
from curate.language_configs.scorers import WebDocsConfig

DEFAULT = WebDocsConfig()


def line_of(letters: int, punctuation: int = 0, digits: int = 0, bad: str = "") -> str:
    """A line of 5-letter words with exactly `letters` letters, then `punctuation` commas, digits and `bad`."""
    assert letters % 5 == 0
    words = ["kissa"] * (letters // 5)
    for index in range(punctuation):
        words[index] += ","
    return " ".join(words + (["7" * digits] if digits else []) + ([bad] if bad else []))


def score(texts: list[str], language: float = 0.9, settings: WebDocsConfig = DEFAULT) -> np.ndarray:
    return web_docs_scores(texts, np.full(len(texts), language), settings)


def test_character_classes() -> None:
    codes = np.array([ord(c) for c in "aÄ́٣7.,«#|€😀 \t\ue000"], dtype=np.uint32)
    # letters (with a combining mark), digits (Arabic-Indic too), punctuation, then # | € and emoji are bad
    assert char_classes(codes).tolist() == [1, 1, 1, 2, 2, 3, 3, 3, 4, 4, 4, 4, 0, 0, 4]


def test_a_clean_long_line_scores_the_formula() -> None:
    # 1000 letters, 24 commas (2.4 %): every penalty is 1; one long segment (0.1) that fills the largest-segment
    # scale (u = 1 → min(1, 1 + 0.1) = 1); language 0.9 → 9
    assert score([line_of(1000, 24)]).tolist() == [pytest.approx(0.8 * 9 + 0.1 + 1)]


def test_each_penalty_follows_its_band() -> None:
    base = 0.8 * 9 + 0.1 + 1
    # digits 10 % of letters: lin(10; 1 → 1, 30 → 0) = 1 - 9/29
    assert score([line_of(1000, 24, digits=100)])[0] == pytest.approx(base * (1 - 9 / 29), abs=1e-3)
    # punctuation 10 % of letters: lin(10; 2.5 → 1, 25 → 0) = 1 - 7.5/22.5
    assert score([line_of(1000, 100)])[0] == pytest.approx(base * (1 - 7.5 / 22.5), abs=1e-3)
    # bad characters 4 % (40 `#` in one word): lin(4; 2 → 0.7, 6 → 0.5) = 0.6
    assert score([line_of(1000, 24, bad="#" * 40)])[0] == pytest.approx(base * 0.6, abs=1e-3)
    # no punctuation at all: ratio 0 ≤ 0.3 → 0, the whole score is 0
    assert score([line_of(1000)])[0] == 0.0


def test_two_low_penalties_multiply() -> None:
    # digits 10 % and punctuation 10 %: v1 × v2 × mean(1, 1)
    expected = (0.8 * 9 + 0.1 + 1) * (1 - 9 / 29) * (1 - 7.5 / 22.5)
    assert score([line_of(1000, 100, digits=100)])[0] == pytest.approx(expected, abs=1e-3)


def test_repeated_segments_and_short_lines() -> None:
    # four 100-letter lines, one repeating another: repeated = 1 - 1/4; no segment over 250 letters → long = 0,
    # largest = 0; punctuation 2 % → 1
    lines = [line_of(100, 2)] * 2 + [line_of(100, 2).replace("kissa", "koira"), line_of(100, 2).replace("k", "t")]
    assert score(["\n".join(lines)], language=1.0)[0] == pytest.approx(8 * 0.75, abs=1e-3)


def test_unpunctuated_segments_are_penalised() -> None:
    # 2 of 4 long lines (50 % of the letters) have no punctuation: the segment penalty lin(0.5; 0.4 → 0) = 0
    punctuated, bare = line_of(300, 12), line_of(300).replace("kissa", "koira")
    assert score(["\n".join([punctuated, bare, punctuated.replace("k", "t"), bare.replace("k", "t")])])[0] == 0.0


def test_language_adaptation_moves_the_bands() -> None:
    text = [line_of(1000, 65)]  # 6.5 % punctuation: too much for the reference, typical for Japanese
    default = score(text)[0]
    adapted = score(text, settings=WebDocsConfig(typical_punctuation_percent=6.5))[0]
    assert default == pytest.approx((0.8 * 9 + 0.1 + 1) * (1 - 4 / 22.5), abs=1e-3)
    # adapted: the desired band is 0.9–2.5 × 6.5/2.4 (up to 6.77 %), and segments count as long from 250 × 2.4/6.5
    # letters (92) and as filled at 1000 × 2.4/6.5 (369): the 1000-letter line is long and full
    assert adapted == pytest.approx(0.8 * 9 + 0.1 + 1, abs=1e-3)


def test_documents_without_letters_score_zero() -> None:
    assert score(["", "12345 678", "😀😀😀 | ###"]).tolist() == [0.0, 0.0, 0.0]
    batch = pa.table({"text": pa.array([None, line_of(1000, 24)], pa.string()), "language_score": [None, 0.9]})
    assert WebDocsScore(DEFAULT)(batch)["web_docs_score"].to_pylist() == [0.0, pytest.approx(8.3)]


def test_clean_finnish_ranks_above_boilerplate(documents) -> None:
    clean, boilerplate = documents["held"], documents["boilerplate"]
    clean_scores = web_docs_scores(clean, lid_scores(clean), DEFAULT)
    junk_scores = web_docs_scores(boilerplate, lid_scores(boilerplate), DEFAULT)
    assert np.median(clean_scores) >= 6.0  # HPLT: 5 and above is a good document
    assert np.median(junk_scores) <= 2.5
    pairs_ranked = (clean_scores[:, None] > junk_scores[None, :]).mean()
    # (the few clean documents below are UD Finnish OOD tweets and unpunctuated song lyrics)
    assert pairs_ranked >= 0.98, f"clean above boilerplate in {pairs_ranked:.3f} of pairs"


def test_block_keeps_the_score_and_drops_below_the_threshold(documents) -> None:
    texts = documents["held"][:20] + documents["boilerplate"][:20]
    batch = pa.table({"text": texts, "language_score": lid_scores(texts)})
    kept = WebDocsScore(DEFAULT)(batch)
    assert "drop_reason" not in kept.column_names and kept.column_names[-1] == "web_docs_score"
    marked = WebDocsScore(WebDocsConfig(min_score=5.0))(batch)
    reasons = marked["drop_reason"].to_pylist()
    scores = marked["web_docs_score"].to_pylist()
    assert reasons == [("web_docs.score_low" if s < 5.0 else None) for s in scores]
    assert reasons[20:] == ["web_docs.score_low"] * 20 and reasons[:20].count(None) >= 18
