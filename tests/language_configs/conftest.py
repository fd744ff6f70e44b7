"""Fixtures for the language-config tests: FineWeb2's reference configs in ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
FINEWEB2_CONFIGS = SHARED / "reference" / "fineweb2" / "configs"


@pytest.fixture(scope="session")
def fineweb2_configs() -> list[Path]:
    paths = sorted(FINEWEB2_CONFIGS.glob("*.yml"))
    assert len(paths) == 11, f"FineWeb2's configs are missing from {FINEWEB2_CONFIGS}"
    return paths


@pytest.fixture(scope="session")
def fineweb2_more_configs() -> list[Path]:
    """A random sample of 150 further FineWeb2 configs (thresholds above 1, odd stopwords)."""
    paths = sorted((FINEWEB2_CONFIGS.with_name("configs-more")).glob("*.yml"))
    assert len(paths) == 150, "FineWeb2's configs-more sample is missing"
    return paths


@pytest.fixture(scope="session")
def fineweb2_raw():
    """code → the content of FineWeb2's configs/<code>.yml."""
    return lambda code: yaml.safe_load((FINEWEB2_CONFIGS / f"{code}.yml").read_text(encoding="utf-8"))
