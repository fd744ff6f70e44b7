"""Checkpoints: complete, atomic, and loadable by `transformers` as they are.

    <out_dir>/checkpoints/step_000500/
        model/       HF format: config.json, model.safetensors, tokenizer files
                     (`AutoModelForCausalLM.from_pretrained(".../model")` loads it)
        trainer.pt   step, optimizer, data cursors of every shard, RNG of every worker, config

A checkpoint is written under a temporary dot-name and renamed when complete, so a run killed
while saving leaves the previous checkpoint as the latest one. Resume finds the newest complete
`step_*` folder.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

_STEP_DIR = re.compile(r"^step_(\d+)$")


def checkpoints_root(out_dir: str | Path) -> Path:
    return Path(out_dir) / "checkpoints"


def list_checkpoints(out_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = checkpoints_root(out_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    found = list_checkpoints(out_dir)
    return found[-1] if found else None


def save_checkpoint(out_dir: str | Path, step: int, model: torch.nn.Module,
                    model_state: dict[str, torch.Tensor], tokenizer: Any,
                    trainer_state: dict[str, Any], keep: int) -> Path:
    """Write checkpoint `step` atomically (call on one worker only), then keep the newest `keep`."""
    root = checkpoints_root(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:06d}"
    tmp = root / f".{final.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    with _quiet_transformers():
        model.save_pretrained(str(tmp / "model"), state_dict=model_state)
        tokenizer.save_pretrained(str(tmp / "model"))
    torch.save(trainer_state, tmp / "trainer.pt")
    _fsync_tree(tmp)
    if final.exists():  # the same step saved again after a resume: replace it
        old = root / f".{final.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old)
    else:
        os.replace(tmp, final)
    _fsync_dir(root)
    for stale in list_checkpoints(out_dir)[:-keep]:
        shutil.rmtree(stale)
    return final


def load_model_weights(model: torch.nn.Module, checkpoint: Path) -> None:
    """Load a checkpoint's safetensors into `model` (before it is wrapped for DDP / FSDP)."""
    state: dict[str, torch.Tensor] = {}
    for f in sorted((checkpoint / "model").glob("*.safetensors")):
        state.update(load_file(f))
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if getattr(model.config, "tie_word_embeddings", False) else set()
    if unexpected or set(missing) - tied:
        raise RuntimeError(f"checkpoint {checkpoint} does not match the model "
                           f"(missing {sorted(set(missing) - tied)[:3]}, unexpected {unexpected[:3]})")


def load_trainer_state(checkpoint: Path) -> dict[str, Any]:
    return torch.load(checkpoint / "trainer.pt", map_location="cpu", weights_only=True)


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No "Writing model shards" progress bar in the middle of the training log."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _fsync_tree(folder: Path) -> None:
    for f in folder.rglob("*"):
        if f.is_file():
            with open(f, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
