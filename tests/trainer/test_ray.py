"""Ray Train on two CPU workers (gloo): two steps of DDP, then a resume under FSDP2 for two more, give the
loss curve and weights of one process on the same global batch (two data shards; one process accumulates
one micro-batch of each). Checkpoints hold full (unsharded) state, so a run may change how it is
parallelised when it resumes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from trainer_testdata import REPO
from safetensors.torch import load_file

from curate.trainer import launch, train

COMMON = dict(steps=4, micro_batch_size=4, data_shards=2, warmup_steps=2, log_every=1)


def test_ddp_then_fsdp_workers_match_one_process(tiny_config, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ray = pytest.importorskip("ray")
    single = train(tiny_config(out_dir=tmp_path / "one", grad_accum_steps=2, **COMMON))
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray.init(address="local", num_cpus=2, include_dashboard=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO.parent)}})
    workers = tiny_config(out_dir=tmp_path / "ray", grad_accum_steps=1, **COMMON)
    try:
        ddp = launch(dataclasses.replace(workers, stop_at_step=2), num_workers=2, use_gpu=False)
        fsdp = launch(dataclasses.replace(workers, parallel="fsdp"), num_workers=2, use_gpu=False)
    finally:
        ray.shutdown()
    assert (ddp.steps, fsdp.start_step, fsdp.steps) == (2, 2, 4)
    np.testing.assert_allclose(ddp.losses + fsdp.losses, single.losses, rtol=1e-5)
    assert single.losses[-1] < single.losses[0]
    assert fsdp.source_tokens == single.source_tokens  # the same global batches
    weights = [load_file(Path(r.checkpoint) / "model" / "model.safetensors") for r in (single, fsdp)]
    for name, tensor in weights[0].items():  # (FSDP's checkpoint also names the tied output layer)
        torch.testing.assert_close(weights[1][name], tensor, rtol=1e-4, atol=1e-6)
