"""Shared fixtures: the ../shared data folder and a local Common Crawl mirror built from it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # keep Ray on loopback in tests
os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local test cluster needs no token
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub downloads at test time
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mirror import SHARED, Mirror, build_mirror  # noqa: E402


@pytest.fixture(scope="session")
def shared() -> Path:
    assert SHARED.is_dir(), f"the shared data folder is missing: {SHARED}"
    return SHARED


@pytest.fixture(scope="session")
def mirror(tmp_path_factory) -> Mirror:
    """A CC layout with three crawls, generated multilingual WARCs and planted bad records (read-only)."""
    return build_mirror(tmp_path_factory.mktemp("mirror"))


@pytest.fixture(autouse=True, scope="module")
def _fresh_ray_per_module():
    """A test module that starts Ray (through `curate run` or a trainer) leaves no Ray to the next one."""
    yield
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()
