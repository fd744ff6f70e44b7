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


# The test files that take longest, longest first (wall seconds under `make test`, measured with --durations):
# `--dist loadfile` hands files to the workers in collection order (the Makefile turns off xdist's reordering by
# test count, which started the two cluster tests, 350 s, last), so the long files start first and the short
# ones fill in around them.
LONGEST_FIRST = (
    "docs/test_docs.py",  # ~400 s
    "pipeline/test_pipeline_cluster.py",  # ~350 s
    "pipeline/test_pipeline_recovery.py",  # ~270 s
    "pipeline/test_pipeline_faults.py",  # ~260 s
    "pipeline/test_pipeline_run.py",  # ~240 s
    "scorers/test_scorers_transformer.py",  # ~190 s
    "pipeline/test_pipeline_repair.py",  # ~160 s
    "pipeline/test_pipeline_index.py",  # ~90 s
    "trainer/test_ray.py",  # ~80 s
    "blocks/test_blocks_prefilter.py",  # ~75 s
    "ablate/test_ablate_run.py",  # ~65 s
    "dedup/test_dedup_memory.py",  # ~45 s
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`LONGEST_FIRST` files first; every other file, and the tests within a file, keep their order."""
    here = Path(__file__).resolve().parent
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}

    def order(item: pytest.Item) -> int:
        path = Path(str(item.fspath)).resolve()
        name = path.relative_to(here).as_posix() if path.is_relative_to(here) else ""
        return rank.get(name, len(rank))

    items.sort(key=order)


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
