"""Training a tiny Llama on CPU: the loss falls, resume is exact, shares and weights are honoured
to the token, and checkpoints load in `transformers`."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from trainer_testdata import FINNISH_RUN_STEPS, HELDOUT_FI, finnish_weights, make_config
from safetensors.torch import load_file

from curate.trainer import train
from curate.trainer.checkpoint import list_checkpoints
from curate.trainer.data import build_stream, iter_texts
from curate.trainer.evaluate import EvalSet, evaluate
from curate.trainer.tokenizer import load_tokenizer, make_tokenize

STEPS = FINNISH_RUN_STEPS


def test_loss_goes_down_on_curated_finnish(finnish_run) -> None:
    _, result = finnish_run
    first, last = result.evals[0], result.evals[-1]
    assert (first["step"], last["step"]) == (0, STEPS)
    assert first["loss"] == pytest.approx(np.log(768), abs=0.1)  # uniform over the vocabulary
    assert last["loss"] < first["loss"] - 0.6
    assert last["bpb"] < first["bpb"] - 0.35
    assert np.mean(result.losses[-10:]) < np.mean(result.losses[:5]) - 0.6
    assert len(result.losses) == STEPS and result.stopped == "steps"


def test_logged_source_tokens_match_a_recount(finnish_run, tokenizer_dir: Path) -> None:
    """The trained tokens per source equal, to the token, an independent replay of the stream."""
    config, result = finnish_run
    assert sum(result.source_tokens.values()) == STEPS * 8 * 64
    tokenizer = load_tokenizer(str(tokenizer_dir))
    stream = build_stream(config.sources, make_tokenize(tokenizer), tokenizer.eos_token_id, 64)
    recount = sum(stream.next_sequence()[1] for _ in range(STEPS * 8))
    assert result.source_tokens == {"fin_Latn": int(recount[0]), "replay": int(recount[1])}
    longest_document = 2 * 64  # generous: documents here are shorter than this
    assert abs(result.source_tokens["fin_Latn"] - 0.75 * STEPS * 8 * 64) <= longest_document + 64
    records = [json.loads(line) for line in (Path(config.out_dir) / "metrics.jsonl").open()]
    assert [r for r in records if r["kind"] == "train"][-1]["source_tokens"] == result.source_tokens


def test_throughput_is_logged_every_log_step_without_the_warm_up(finnish_run) -> None:
    """tokens/s, MFU (no peak on a CPU) and data wait on every `train` line; the run's figures leave
    the first log interval (compilation, warm-up) out and report it separately."""
    config, result = finnish_run
    records = [json.loads(line) for line in (Path(config.out_dir) / "metrics.jsonl").open()]
    lines = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in lines] == list(range(25, STEPS + 1, 25))
    assert [r["warmup"] for r in lines] == [True] + [False] * 5
    assert all(r["tokens_per_s"] > 0 and r["mfu"] is None and 0 <= r["data_wait"] < 1 for r in lines)
    assert result.warmup_steps == 25 and result.mfu is None and result.mfu_with_warmup is None
    assert result.tokens_per_s > 0 and result.tokens_per_s_with_warmup > 0 and 0 <= result.data_wait < 1
    tokens = 8 * 64
    seconds = sum(tokens * 25 / r["tokens_per_s"] for r in lines[1:])
    assert result.tokens_per_s == pytest.approx(tokens * 125 / seconds, rel=1e-6)


def test_checkpoint_loads_in_transformers(finnish_run, tokenizer_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config, result = finnish_run
    assert [p.name for p in list_checkpoints(config.out_dir)] == ["step_000075", "step_000150"]
    folder = Path(result.checkpoint) / "model"
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenize = make_tokenize(tokenizer)
    eval_set = EvalSet.from_texts(iter_texts([HELDOUT_FI]), tokenize, tokenizer.eos_token_id, 64, 20_000)
    metrics = evaluate(model, eval_set, torch.device("cpu"), 8, nullcontext)
    assert metrics["loss"] == pytest.approx(result.evals[-1]["loss"], rel=1e-5)  # the trained weights
    prompt = tokenizer("Suomen hallitus", return_tensors="pt")
    generated = model.generate(**prompt, max_new_tokens=6, do_sample=False)
    assert generated.shape[1] == prompt["input_ids"].shape[1] + 6


def test_continued_pretraining_starts_from_the_checkpoint(finnish_run, tiny_config) -> None:
    """`model=` loads an HF checkpoint (and its tokenizer): CPT starts at its held-out loss."""
    _, result = finnish_run
    cpt = train(tiny_config(model=str(Path(result.checkpoint) / "model"), model_config=None,
                            tokenizer=None, steps=3, warmup_steps=1, eval_texts=[str(HELDOUT_FI)],
                            eval_max_tokens=20_000))
    assert cpt.evals[0]["step"] == 0
    assert cpt.evals[0]["loss"] == pytest.approx(result.evals[-1]["loss"], rel=1e-5)
    assert cpt.evals[0]["loss"] < result.evals[0]["loss"] - 0.6  # not a fresh model


def test_rerunning_a_finished_run_keeps_its_result(finnish_run) -> None:
    """The same call again trains nothing and leaves result.json as it was (checkpoint, losses, evaluations)."""
    config, result = finnish_run
    path = Path(config.out_dir) / "result.json"
    before = path.read_text()
    checkpoints = list_checkpoints(config.out_dir)
    again = train(config)
    assert path.read_text() == before and list_checkpoints(config.out_dir) == checkpoints
    assert again == result and again.checkpoint and len(again.losses) == STEPS and len(again.evals) == 3


def test_resume_is_exact(tiny_config, tmp_path: Path) -> None:
    """12 steps straight = 5 steps, a checkpoint, and 7 more: bit-identical losses and weights, and the
    same evaluations (step 5, where the first call stopped, is evaluated by the second)."""
    common = dict(steps=12, grad_accum_steps=2, micro_batch_size=4, warmup_steps=3, log_every=4,
                  eval_texts=[str(HELDOUT_FI)], eval_every=5, eval_max_tokens=2000)
    straight = train(tiny_config(out_dir=tmp_path / "straight", **common))
    first = train(tiny_config(out_dir=tmp_path / "split", stop_at_step=5, **common))
    assert (first.steps, first.stopped) == (5, "stop_at_step")
    second = train(tiny_config(out_dir=tmp_path / "split", **common))
    assert (second.start_step, second.steps) == (5, 12)
    assert first.losses + second.losses == straight.losses  # exact float equality
    assert [e["step"] for e in straight.evals] == [0, 5, 10, 12]
    assert first.evals + second.evals == straight.evals  # step for step, value for value
    assert second.source_tokens == straight.source_tokens
    weights = [load_file(Path(r.checkpoint) / "model" / "model.safetensors") for r in (straight, second)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_no_repeat_trains_exactly_one_weighted_epoch(tiny_config, tmp_path: Path,
                                                    fi_documents: list[str], tokenizer_dir: Path) -> None:
    """--no-repeat: the run ends when the source is exhausted, after exactly the packed windows of
    one epoch, in which every document appears `weight` times."""
    documents = fi_documents[:60]
    weights = finnish_weights(len(documents))
    path = tmp_path / "small.parquet"
    pq.write_table(pa.table({"text": documents, "weight": weights}), path)
    tokenizer = load_tokenizer(str(tokenizer_dir))
    lengths = [len(ids) + 1 for ids in make_tokenize(tokenizer)(documents)]  # + EOS
    epoch_tokens = sum(w * n for w, n in zip(weights, lengths))
    windows = (epoch_tokens - 1) // 64
    result = train(tiny_config(mix=str(path), repeat=False, steps=10_000, micro_batch_size=4))
    assert result.stopped == "data"
    assert result.steps == windows // 4
    assert result.source_tokens == {"small": result.steps * 4 * 64}
    assert (Path(result.checkpoint).name) == f"step_{result.steps:06d}"
