"""Paths and helpers shared by the trainer tests (a module of its own: `conftest` is not a unique
name across the test folders)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `trainer` from this checkout, also before a re-install
    sys.path.insert(0, str(REPO))

from curate.trainer import TrainConfig  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
FI_DIR = SHARED / "text" / "fi"
FLORES = SHARED / "text" / "flores200"
HELDOUT_FI = FLORES / "fin_Latn.txt"
"""Held-out reference text: FLORES-200 Finnish (not in the training data)."""
FINNISH_RUN_STEPS = 150
"""Steps of the `finnish_run` fixture (a tiny model on the Finnish + English mixture)."""


def read_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def byte_tokenize(texts: list[str]) -> list[list[int]]:
    """A tokenizer for data tests: UTF-8 bytes are the ids, EOS is 256."""
    return [list(t.encode("utf-8")) for t in texts]


BYTE_EOS = 256


def finnish_weights(n: int) -> list[int]:
    """Rehydration-like weights: mostly 1, every 5th document 2, every 7th 3."""
    return [3 if i % 7 == 0 else 2 if i % 5 == 0 else 1 for i in range(n)]


def make_config(out_dir: Path, tokenizer_dir: Path, mix: str, **overrides: Any) -> TrainConfig:
    """A tiny-model config (2 layers, width 64, sequences of 64 tokens); keywords override."""
    fields: dict[str, Any] = dict(
        mix=mix, tokenizer=str(tokenizer_dir), model_config="tiny", seq_len=64, micro_batch_size=8,
        steps=20, lr=3e-3, warmup_steps=5, eval_every=0, log_every=5, ckpt_every=0,
        out_dir=str(out_dir), progress=False, prefetch=2)
    fields.update(overrides)
    return TrainConfig(**fields)
