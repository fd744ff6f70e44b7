"""Fixtures for the filter tests (helpers in filters_helpers.py)."""

from __future__ import annotations

import pytest
from filters_helpers import finnish_documents as build_finnish_documents
from filters_helpers import make_spam

from curate.language_configs.schema import load_language_config


@pytest.fixture(scope="session")
def finnish_documents() -> list[str]:
    """200 Finnish documents of 2-6 paragraphs of 2-6 consecutive sentences."""
    return build_finnish_documents(200)


@pytest.fixture(scope="session")
def spam_documents(finnish_documents) -> list[str]:
    """Web junk of every kind the filters catch, built from the Finnish documents."""
    return make_spam(finnish_documents)


@pytest.fixture(scope="session")
def fin_config():
    return load_language_config("fin_Latn")
