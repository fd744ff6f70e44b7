"""Fixtures of the dedup tests (helpers in `dedup_helpers.py`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dedup_helpers import FINNISH, finnish_sentences  # noqa: E402


@pytest.fixture(scope="session")
def sentences() -> list[list[str]]:
    assert FINNISH.is_dir(), f"the shared Finnish text is missing: {FINNISH}"
    return finnish_sentences()


@pytest.fixture(scope="session")
def vocabulary(sentences) -> list[str]:
    return sorted({w for s in sentences for w in s})
