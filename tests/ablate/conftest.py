"""Fixtures of the ablation tests: a `curate run` output folder built by hand from the shared Finnish text
(see `ablate_testdata`), and one torch thread (as in the trainer tests: small models on a shared 2-core
machine run fastest on one thread)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from torch_threads import one_torch_thread  # noqa: E402, F401 (autouse: one torch thread)
from ablate_testdata import Built, build_run_output  # noqa: E402


@pytest.fixture(scope="session")
def run_output(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> Built:
    """A run output with every part (read-only: tests that write build their own)."""
    return build_run_output(tmp_path_factory.mktemp("run"))
