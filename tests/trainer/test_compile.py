"""The GPU fast path, checked on the CPU: decoder layers compiled as one shared graph (dynamo's `eager`
backend: the same capture, no code generation) and MFU's peak chosen by the precision the matmuls run
in (the fused loss is tested in test_loss.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters
from trainer_testdata import HELDOUT_FI

from curate.trainer import model as model_module
from curate.trainer import train
from curate.trainer.metrics import matmul_precision, mfu, peak_flops


@pytest.fixture
def eager_dynamo(monkeypatch: pytest.MonkeyPatch):
    """Dynamo with the `eager` backend, a recompile limit of 1 (below the tiny model's 2 layers) that
    fails instead of falling back to eager, and fresh counters."""
    monkeypatch.setattr(model_module, "COMPILE_BACKEND", "eager")
    torch._dynamo.reset()
    counters.clear()
    with torch._dynamo.config.patch(recompile_limit=1, fail_on_recompile_limit_hit=True):
        yield counters
    torch._dynamo.reset()


def test_the_layers_compile_once_and_train_as_eager_does(tiny_config, eager_dynamo, tmp_path) -> None:
    common = dict(steps=4, log_every=2, eval_texts=[str(HELDOUT_FI)], eval_every=2, eval_max_tokens=2000)
    compiled = train(tiny_config(out_dir=tmp_path / "compiled", compile=True, **common))
    assert dict(eager_dynamo["stats"]) == {"calls_captured": eager_dynamo["stats"]["calls_captured"],
                                           "unique_graphs": 1}
    assert dict(eager_dynamo["frames"]) == {"total": 1, "ok": 1}  # one compilation, no recompile after it
    eager = train(tiny_config(out_dir=tmp_path / "eager", compile=False, **common))
    assert compiled.losses == pytest.approx(eager.losses, rel=1e-5)
    assert [e["loss"] for e in compiled.evals] == pytest.approx([e["loss"] for e in eager.evals], rel=1e-5)


def test_a_kv_cache_would_recompile_every_layer(tiny_config, eager_dynamo) -> None:
    """Why the loop passes `use_cache=False`: with a cache each layer's `layer_idx` recompiles."""
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=2))
    model_module.compile_layers(model)
    tokens = torch.randint(0, 64, (2, 8))
    model(input_ids=tokens, use_cache=False)
    with pytest.raises(Exception, match="recompile_limit|recompile limit"):
        model(input_ids=tokens, use_cache=True)


def test_the_peak_is_the_precision_that_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert (matmul_precision(cuda, True), matmul_precision(cuda, False), matmul_precision(cpu, False)) == (
        "bf16", "tf32", "fp32")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    assert peak_flops(cuda, "bf16") == (989.4e12, "989.4 TFLOP/s (H100 SXM dense BF16)")
    assert peak_flops(cuda, "tf32") == (494.7e12, "494.7 TFLOP/s (H100 SXM dense TF32)")
    assert peak_flops(cpu, "fp32")[0] is None
    assert peak_flops(cpu, "fp32", 100.0)[0] == 100e12
    assert mfu(1000.0, 6e9, 989.4e12, 2) == pytest.approx(1000 * 6e9 / (2 * 989.4e12))


def test_the_trainer_runs_without_the_curation_stack() -> None:
    """The loop, loader and model import neither Ray, polars nor pyarrow (a GPU box needs only torch and
    transformers; `benchmarks/trainer.py` relies on it)."""
    code = ("import sys; import curate.trainer.loop, curate.trainer.loader, curate.trainer.metrics; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'ray', 'polars', 'pyarrow', 'pandas'}))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
