"""Fixtures of the ablation tests: a `curate run` output folder built by hand from the shared Finnish text
(see `ablate_testdata`), and one torch thread (as in the trainer tests: small models on a shared 2-core
machine run fastest on one thread)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ablate_testdata import Built, build_run_output  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    import torch

    threads, parallelism = torch.get_num_threads(), os.environ.get("TOKENIZERS_PARALLELISM")
    torch.set_num_threads(1)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    yield
    torch.set_num_threads(threads)
    if parallelism is None:
        os.environ.pop("TOKENIZERS_PARALLELISM", None)
    else:
        os.environ["TOKENIZERS_PARALLELISM"] = parallelism


@pytest.fixture(scope="session")
def run_output(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> Built:
    """A run output with every part (read-only: tests that write build their own)."""
    return build_run_output(tmp_path_factory.mktemp("run"))
