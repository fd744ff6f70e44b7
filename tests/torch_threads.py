"""A session fixture for the test folders that train torch models (import it into their conftest)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One torch thread and a sequential tokenizer: on a small shared CI machine the spin-waits of several
    threads cost far more than they give for models this small (4x slower under load). Ray Train workers get
    one thread from Ray anyway."""
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
