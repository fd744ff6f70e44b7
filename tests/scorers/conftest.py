"""Fixtures of the scorer tests: clean Finnish and junk made from it, and the tiny models trained on them once per
session (a fastText quality classifier, a KenLM model), plus the documents' real LID scores (ft176)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scorers_helpers import boilerplate, finnish_documents, junk, seo_spam, split, word_salad  # noqa: E402


@pytest.fixture(scope="session")
def documents() -> dict[str, list[str]]:
    """Clean Finnish (training part and held-out part) and junk made from each part."""
    train, held = split(finnish_documents())
    return {
        "train": train, "held": held,
        "train_spam": junk(train, seo_spam, 1), "train_boilerplate": junk(train, boilerplate, 2),
        "spam": junk(held, seo_spam, 3), "boilerplate": junk(held, boilerplate, 4), "salad": junk(held, word_salad, 5),
    }


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def kenlm_model(documents, models) -> Path:
    """A 3-gram KenLM model of the training documents (binary format), trained with lmplz."""
    from curate.blocks.score_perplexity import train_kenlm

    return train_kenlm(documents["train"], models / "fin.binary", order=3).path


@pytest.fixture(scope="session")
def quality_report(documents, models):
    """A tiny fastText classifier: clean training documents (__label__hq) vs junk made from them (__label__lq)."""
    from curate.blocks.score_quality import train_classifier

    return train_classifier(documents["train"], documents["train_spam"] + documents["train_boilerplate"],
                            models / "quality.bin", dim=16, buckets=20_000, epoch=5, lr=0.5, seed=0)


@pytest.fixture(scope="session")
def quality_model(quality_report) -> Path:
    return quality_report.path

