"""The training loop: `train(config)` runs CPT in this process.

One process is one worker with one device. Alone it trains on its own (CPU or one GPU); started
by Ray Train (`trainer.ray_train.launch`) or `torchrun` it is one rank of DDP / FSDP and the code is the
same. Each step reads top to bottom:

    learning rate (a pure function of the step) -> evaluation -> micro-batches
    -> forward / backward with gradient accumulation -> clip -> optimizer step
    -> log line -> checkpoint

    from curate.trainer import TrainConfig, train
    result = train(TrainConfig(mix="out/fin_Latn=0.75,replay.parquet=0.25",
                               model="HuggingFaceTB/SmolLM2-135M", steps=2000))
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from curate.trainer.checkpoint import latest_checkpoint, load_model_weights, load_trainer_state, save_checkpoint
from curate.trainer.config import ConfigError, SourceSpec, TrainConfig
from curate.trainer.data import build_stream, iter_texts
from curate.trainer.distributed import (World, all_workers, full_model_state, full_optimizer_state,
                                 gather_objects, gradient_sync, load_optimizer_state,
                                 mean_over_workers, parallelize, pick_device, setup_world,
                                 sum_over_workers)
from curate.trainer.embeddings import adapt_vocabulary
from curate.trainer.evaluate import EvalSet, evaluate
from curate.trainer.loader import BatchLoader, MicroBatch
from curate.trainer.metrics import Meter, Reporter, ensure_log_handler, matmul_precision, mfu, peak_flops
from curate.trainer.loss import model_nll
from curate.trainer.model import build_model, compile_layers, flops_per_token
from curate.trainer.schedule import lr_at
from curate.trainer.tokenizer import load_tokenizer, make_tokenize

# Fields that define the data stream: changing them between a checkpoint and its resume
# gives a different run than the uninterrupted one.
_DATA_FIELDS = ("mix", "seq_len", "micro_batch_size", "grad_accum_steps", "data_shards", "seed",
                "text_column", "weight_column", "repeat")


@dataclass
class TrainResult:
    """What a `train` call did (also written to `<out_dir>/result.json`)."""

    start_step: int
    """Completed steps when this call began (non-zero after a resume)."""
    steps: int
    """Completed steps when it ended."""
    losses: list[float] = field(default_factory=list)
    """Training loss of each step of this call (mean over micro-batches and workers)."""
    evals: list[dict[str, float]] = field(default_factory=list)
    """Held-out `{step, loss, bpb}` records."""
    source_tokens: dict[str, int] = field(default_factory=dict)
    """Trained (target) tokens per mixture source over the whole run, all workers."""
    epochs: dict[str, int] = field(default_factory=dict)
    """Completed epochs per source (main worker's shards)."""
    tokens_per_s: float | None = None
    """Training tokens per second of this call after its first log interval (compilation and
    warm-up); None when the call logged only once."""
    mfu: float | None = None
    """Model FLOPs utilisation at `tokens_per_s` (None without a known peak)."""
    data_wait: float | None = None
    """Share of the step time after the first log interval spent waiting for data."""
    warmup_steps: int = 0
    """Steps of the first log interval, left out of the three figures above."""
    tokens_per_s_with_warmup: float = 0.0
    """Tokens per second over all steps of this call, compilation and warm-up included."""
    mfu_with_warmup: float | None = None
    stopped: str = "steps"
    """`steps`, `stop_at_step`, or `data` (a source ran out and data is not repeated)."""
    checkpoint: str | None = None
    vocabulary: dict[str, Any] | None = None
    """With `new_embeddings`: how the vocabulary was extended (method, tokenizer provenance, counts)."""

    @property
    def source_shares(self) -> dict[str, float]:
        total = sum(self.source_tokens.values()) or 1
        return {name: tokens / total for name, tokens in self.source_tokens.items()}


def train(config: TrainConfig, *, device: torch.device | str | None = None) -> TrainResult:
    """Run (or resume) CPT as configured, in this process. See the module docstring."""
    config.validate()
    ensure_log_handler()
    world = setup_world()
    device = pick_device(world, device)
    data_shards = config.data_shards or world.size
    if data_shards % world.size:
        raise ConfigError(f"data_shards ({data_shards}) must be a multiple of the workers ({world.size})")
    use_bf16 = uses_bf16(config.precision, device)
    use_compile = config.compile if config.compile is not None else device.type == "cuda"
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 for whatever still runs in fp32

    def autocast() -> AbstractContextManager[Any]:
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)

    out_dir = Path(config.out_dir)
    checkpoint = latest_checkpoint(out_dir)
    if checkpoint is not None and not config.resume:
        raise ConfigError(f"{out_dir} already holds checkpoints: resume from them or give another --out")
    finished = finished_result(out_dir, checkpoint, min(config.stop_at_step or config.steps, config.steps))
    if finished is not None:  # the same command again: nothing to train, result.json stays as it is
        logging.getLogger("curate.trainer").info("%s already reached step %d (%s): result.json kept", out_dir,
                                                 finished.steps, finished.checkpoint)
        return finished

    # Tokenizer and data: each worker reads its own data shards.
    tokenizer = load_tokenizer(config.tokenizer)  # type: ignore[arg-type]
    tokenize, eos_id = make_tokenize(tokenizer), tokenizer.eos_token_id
    streams = {shard: build_stream(config.sources, tokenize, eos_id, config.seq_len, shard=shard,
                                   num_shards=data_shards, seed=config.seed, repeat=config.repeat,
                                   text_column=config.text_column, weight_column=config.weight_column)
               for shard in range(world.rank, data_shards, world.size)}
    loader = BatchLoader(streams, config.micro_batch_size, config.prefetch)
    names = loader.source_names
    eval_set = (EvalSet.from_texts(iter_texts(config.eval_texts, config.text_column), tokenize,
                                   eos_id, config.seq_len, config.eval_max_tokens)
                if config.eval_texts else None)

    # Model and optimizer.
    raw_model = build_model(config, len(tokenizer), eos_id)
    vocabulary = adapt_vocabulary(raw_model, config, tokenizer, checkpoint)
    raw_model = raw_model.to(device)
    if checkpoint is not None:
        load_model_weights(raw_model, checkpoint)
    flops = flops_per_token(raw_model, config.seq_len)
    n_params = sum(p.numel() for p in raw_model.parameters())
    if use_compile:
        compile_layers(raw_model)
    raw_model.train()
    model = parallelize(raw_model, world, config.parallel, device, use_bf16)
    optimizer = build_optimizer(model, config, device)
    frozen = not_embeddings(raw_model) if config.embeddings_only_steps else []

    step, source_tokens = 0, np.zeros(len(names), dtype=np.int64)
    if checkpoint is not None:
        state = load_trainer_state(checkpoint)
        _warn_changed(state["config"], config, world)
        load_optimizer_state(model, optimizer, state["optimizer"])
        positions = state["data"]["positions"]
        loader.load_state_dict(dict(streams=state["data"]["streams"],
                                    position=positions[world.rank] if len(positions) == world.size else 0))
        _set_rng(state["rng"], world, device)
        step, source_tokens = state["step"], np.asarray(state["source_tokens"], dtype=np.int64)
        if step <= config.embeddings_only_steps:  # never updated: fresh state, as in an uninterrupted run
            for param in frozen:  # (loading gave them a zero state whose step count is already 1)
                optimizer.state.pop(param, None)
    start_step = step
    stop_step = min(config.stop_at_step or config.steps, config.steps)
    tokens_per_step = config.micro_batch_size * config.seq_len * config.grad_accum_steps * world.size
    precision = matmul_precision(device, use_bf16)
    peak, peak_text = peak_flops(device, precision, config.peak_tflops)

    reporter = Reporter(out_dir, config.steps, start_step, world.is_main, config.progress)
    if checkpoint is not None:
        reporter.info("resumed from %s at step %d", checkpoint, step)
    reporter.info("model %.1fM parameters | %d worker(s) on %s | %s | %s tokens/step | %s",
                  n_params / 1e6, world.size, device.type,
                  {"bf16": "bf16 autocast", "tf32": "fp32 weights, TF32 matmuls", "fp32": "fp32"}[precision],
                  f"{tokens_per_step:,}", "compiled per layer" if use_compile else "eager")
    reporter.info("MFU = tokens/s x %.4g FLOPs/token (6N + 12 L d T) / (%d x peak); peak: %s; "
                  "the first log interval (compilation, warm-up) is left out of the run's figure",
                  flops, world.size, peak_text)
    reporter.info("mixture target: %s", ", ".join(f"{s.name} {s.share:.1%}" for s in config.sources))

    if vocabulary is not None:
        reporter.info("vocabulary %d -> %d tokens: %d new rows initialised by %s%s", vocabulary["base_vocab_size"],
                      vocabulary["vocab_size"], vocabulary["new_tokens"], vocabulary["method"],
                      " (from the checkpoint)" if checkpoint is not None else "")
    if config.embeddings_only_steps > step:
        reporter.info("steps %d..%d train the embeddings only", step + 1, config.embeddings_only_steps)
    result = TrainResult(start_step=start_step, steps=step, vocabulary=vocabulary)
    pending_losses: list[torch.Tensor] = []
    pending_tokens = np.zeros(len(names), dtype=np.int64)
    meter, grad_norm = Meter(), 0.0
    last_eval_step: int | None = None  # a resumed run evaluates its first step if it is due
    last_saved_step = start_step if checkpoint is not None else None

    def flush_counts() -> None:
        nonlocal source_tokens, pending_tokens
        source_tokens = source_tokens + sum_over_workers(pending_tokens, world)
        pending_tokens = np.zeros_like(pending_tokens)

    def run_eval() -> None:
        nonlocal last_eval_step
        if eval_set is None or last_eval_step == step:
            return
        # Not training time; eager, so the compiled training graph is not recompiled for eval mode.
        with meter.paused(), torch.compiler.set_stance("force_eager"):
            metrics = evaluate(model, eval_set, device, config.micro_batch_size, autocast)
        last_eval_step = step
        result.evals.append(dict(step=step, **metrics))
        reporter.info("eval step %d | held-out loss %.4f | bits/byte %.4f | %d tokens, %d documents",
                      step, metrics["loss"], metrics["bpb"], eval_set.n_targets, eval_set.n_documents)
        reporter.record("eval", step, **metrics)

    def save() -> None:
        nonlocal last_saved_step
        flush_counts()
        data_states = gather_objects(loader.state_dict(), world)
        rng_states = gather_objects(_get_rng(device), world)
        model_state = full_model_state(model)
        optimizer_state = full_optimizer_state(model, optimizer)
        if world.is_main:
            streams_state = {k: v for s in data_states for k, v in s["streams"].items()}
            trainer_state = dict(step=step, optimizer=optimizer_state, rng=rng_states,
                                 data=dict(streams=streams_state,
                                           positions=[s["position"] for s in data_states]),
                                 source_tokens=source_tokens.tolist(), config=config.to_dict())
            path = save_checkpoint(out_dir, step, raw_model, model_state, tokenizer, trainer_state,
                                   config.keep_checkpoints)
            result.checkpoint = str(path)
            reporter.info("checkpoint %s", path)
            reporter.record("event", step, checkpoint=str(path))
        last_saved_step = step
        if world.size > 1:
            torch.distributed.barrier()

    def log_line() -> None:
        losses = mean_over_workers(torch.stack(pending_losses), world).tolist()
        pending_losses.clear()
        flush_counts()
        result.losses.extend(losses)
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(f"training loss is {losses[-1]} at step {step}: lower --lr")
        warmup = meter.laps == 0
        elapsed, steps, wait = meter.lap()
        tokens_per_s = tokens_per_step * steps / elapsed
        utilisation = mfu(tokens_per_s, flops, peak, world.size)
        shares = source_tokens / max(1, source_tokens.sum())
        reporter.info("step %d/%d | loss %.4f | lr %.2e | grad norm %.3f | %s tok/s | MFU %s | "
                      "data wait %.1f%% | %.0f ms/step | mix %s%s",
                      step, config.steps, losses[-1], lr, grad_norm, f"{tokens_per_s:,.0f}",
                      f"{utilisation:.1%}" if utilisation is not None else peak_text,
                      100 * wait / elapsed, 1000 * elapsed / steps,
                      " ".join(f"{n} {s:.2%}" for n, s in zip(names, shares)),
                      " | warm-up (compilation)" if warmup else "")
        reporter.record("train", step, loss=losses[-1], lr=lr, grad_norm=grad_norm,
                        tokens_per_s=tokens_per_s, mfu=utilisation, data_wait=wait / elapsed,
                        warmup=warmup,
                        source_tokens=dict(zip(names, source_tokens.tolist())))

    try:
        while step < stop_step:
            # 1. learning rate: a pure function of the step
            lr = lr_at(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            # 2. held-out evaluation (at the start, every eval_every steps, at the end)
            if step == 0 or (config.eval_every and step % config.eval_every == 0):
                run_eval()
            # 3. this step's micro-batches; all workers stop together when data runs out
            with meter.waiting():
                batches = take_batches(loader, config.grad_accum_steps)
            if not config.repeat and not all_workers(len(batches) == config.grad_accum_steps, world):
                result.stopped = "data"
                reporter.info("a source ran out (no repeat): stopping after step %d", step)
                break
            # 4. forward / backward with gradient accumulation, clip, step
            loss, norm = train_step(model, optimizer, batches, device, autocast, config.grad_clip,
                                    frozen if step < config.embeddings_only_steps else ())
            for batch in batches:
                pending_tokens += batch.source_tokens
            step += 1
            meter.steps += 1
            pending_losses.append(loss)
            reporter.advance()
            # 6. log, checkpoint
            if step % config.log_every == 0 or step == stop_step:
                grad_norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
                log_line()
            if config.ckpt_every and step % config.ckpt_every == 0 and step < stop_step:
                with meter.paused():
                    save()
        if result.stopped == "steps" and step < config.steps:
            result.stopped = "stop_at_step"
        if pending_losses:
            grad_norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
            log_line()
        if step == config.steps or result.stopped == "data":
            run_eval()
        if last_saved_step != step:
            with meter.paused():
                save()
    finally:
        loader.close()
        reporter.close()

    flush_counts()
    result.steps = step
    result.source_tokens = dict(zip(names, source_tokens.tolist()))
    result.epochs = loader.epochs()
    if meter.total.time:
        result.tokens_per_s_with_warmup = tokens_per_step * meter.total.steps / meter.total.time
        result.mfu_with_warmup = mfu(result.tokens_per_s_with_warmup, flops, peak, world.size)
        result.warmup_steps = meter.total.steps - meter.steady.steps
    if meter.steady.time:
        result.tokens_per_s = tokens_per_step * meter.steady.steps / meter.steady.time
        result.mfu = mfu(result.tokens_per_s, flops, peak, world.size)
        result.data_wait = meter.steady.wait / meter.steady.time
    if world.is_main:
        reporter.info("done: %d steps | %s tok/s, MFU %s after %d warm-up steps (%s tok/s, MFU %s with "
                      "them) | realized mix %s | epochs %s | stopped: %s",
                      step, _format(result.tokens_per_s, ",.0f"), _format(result.mfu, ".1%"),
                      result.warmup_steps, _format(result.tokens_per_s_with_warmup, ",.0f"),
                      _format(result.mfu_with_warmup, ".1%"),
                      ", ".join(f"{n} {s:.4%}" for n, s in result.source_shares.items()),
                      result.epochs, result.stopped)
        (out_dir / "result.json").write_text(json.dumps(asdict(result), indent=2))
    return result


def finished_result(out_dir: Path, checkpoint: Path | None, stop_step: int) -> TrainResult | None:
    """The stored result of a call that already reached `stop_step` with its checkpoint, or None."""
    path = out_dir / "result.json"
    if checkpoint is None or not path.is_file() or int(checkpoint.name.removeprefix("step_")) < stop_step:
        return None
    try:
        result = TrainResult(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        return None
    return result if result.steps >= stop_step and result.checkpoint else None


def _format(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def uses_bf16(precision: str, device: torch.device) -> bool:
    """Whether `precision` (`auto`, `bf16`, `fp32`) means bf16 autocast on `device`."""
    return precision == "bf16" or (precision == "auto" and device.type == "cuda"
                                   and torch.cuda.is_bf16_supported())


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: list[MicroBatch],
               device: torch.device, autocast: Callable[[], AbstractContextManager[Any]],
               grad_clip: float, frozen: Sequence[torch.nn.Parameter] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step: forward / backward of each micro-batch (gradients accumulated, synchronised
    between workers on the last), clipping (`grad_clip` 0: none), the optimizer, which leaves the
    `frozen` parameters as they are (their gradients are dropped). Returns the mean loss and the
    gradient norm as tensors, without waiting for the device."""
    loss_sum = torch.zeros((), device=device)
    for i, batch in enumerate(batches):
        inputs, targets = _to_device(batch, device)
        with gradient_sync(model, i == len(batches) - 1), autocast():
            loss = model_nll(model, inputs, targets) / targets.numel()  # no logits: see trainer.loss
        (loss / len(batches)).backward()
        loss_sum += loss.detach()
    for param in frozen:
        param.grad = None  # AdamW skips a parameter without a gradient: no update, no weight decay
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip or math.inf)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum / len(batches), norm


def not_embeddings(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Every parameter but the input and output embeddings (what `embeddings_only_steps` freezes)."""
    embeddings = {id(model.get_input_embeddings().weight)}
    output = model.get_output_embeddings()
    if output is not None:
        embeddings.add(id(output.weight))
    return [p for p in model.parameters() if id(p) not in embeddings]


def build_optimizer(model: torch.nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only; the fused kernel on GPU."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [dict(params=[p for p in params if p.ndim >= 2], weight_decay=config.weight_decay),
              dict(params=[p for p in params if p.ndim < 2], weight_decay=0.0)]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=1e-8,
                             fused=device.type == "cuda")


def take_batches(loader: BatchLoader, n: int) -> list[MicroBatch]:
    """Up to `n` micro-batches (fewer only when the data has run out)."""
    batches: list[MicroBatch] = []
    for batch in loader:
        batches.append(batch)
        if len(batches) == n:
            break
    return batches


def _to_device(batch: MicroBatch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = torch.from_numpy(batch.tokens)
    if device.type == "cuda":
        tokens = tokens.pin_memory().to(device, non_blocking=True)
    return tokens[:, :-1], tokens[:, 1:]


def _get_rng(device: torch.device) -> dict[str, torch.Tensor]:
    state = dict(cpu=torch.get_rng_state())
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng(states: list[dict[str, torch.Tensor]], world: World, device: torch.device) -> None:
    state = states[world.rank] if len(states) == world.size else states[0]
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _warn_changed(saved: dict[str, Any], config: TrainConfig, world: World) -> None:
    """Warn when a resume changes how the data stream is built (sources compare by name and share)."""

    def comparable(fields: dict[str, Any]) -> dict[str, Any]:
        mix = [(SourceSpec(**s).name, s["share"]) for s in fields["mix"]]
        return {**{f: fields.get(f) for f in _DATA_FIELDS}, "mix": mix}

    before, now = comparable(saved), comparable(config.to_dict())
    changed = [f for f in _DATA_FIELDS if before[f] != now[f]]
    if changed and world.is_main:
        logging.getLogger("curate.trainer").warning(
            "resuming with changed %s: the run will differ from an uninterrupted one", ", ".join(changed))
