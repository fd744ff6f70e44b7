"""Trainer throughput on one GPU (or the CPU): tokens/s, MFU and data wait of the trainer's step
against a bare PyTorch loop over the same batches, in one run.

    python benchmarks/trainer.py                                # CPU: the tiny config, 1 thread
    python benchmarks/trainer.py --model-config 1b              # one GPU: bf16, compiled layers
    python benchmarks/trainer.py --write-sample sample.npz      # here: the pre-tokenized sample only
    python benchmarks/trainer.py --sample sample.npz --model-config 350m --json out/trainer.json
    python benchmarks/trainer.py --loss                         # the loss alone: memory and tokens/s

Needs only torch, transformers (tokenizers, safetensors) and the trainer's own modules: no Ray,
polars or pyarrow, so it runs on a bare GPU machine from this folder. The input is a pre-tokenized
sample: the Finnish text of ../shared/data/text/fi (UD Finnish, WMT newstest; four sentences a
document) tokenized by a byte-level BPE trained on it, saved as token ids (`--write-sample`); without
`--sample` it is written first into a temporary folder. The model's vocabulary is `--vocab-size`
(default 32,768) whatever the BPE's, so the output layer is that of a real model.

* **trainer**: the trainer's data path (the token-share `Mixture` -> lossless `Packer` -> the
  prefetching `BatchLoader` thread; only Parquet reading and tokenization are left out, as the
  sample is pre-tokenized), its step (`train_step`: per-layer compiled model with `use_cache=False`,
  the fused loss of `trainer.loss`, clipping, fused AdamW), and its `Meter`: the figure leaves out the first log
  interval (compilation, warm-up), as `curate train` does.
* **bare loop**: the same model shape, compile setting and optimizer, one plain
  `F.cross_entropy(logits.float())`, on the same batches already on the device; the median of its
  timed intervals after a warm-up interval.

`--loss` measures the loss alone (`trainer.loss.linear_cross_entropy`, the output projection and the
cross-entropy fused, chunk by chunk) against the trainer's previous loss (full logits, then a chunked
fp32 cross-entropy) and `transformers`' own (`ForCausalLMLoss` on the full logits), forward and
backward, at vocabularies of 32,768 and 131,072: peak memory above the inputs, from a tracked allocator
(every storage an operation creates, counted until freed), and tokens per second.

MFU = tokens/s x (6 N + 12 L d T) / dense peak of the precision that runs (bf16 autocast on a GPU
that has it); "not measured" without a known GPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED_FI = REPO.parent / "shared" / "data" / "text" / "fi"


def import_curate() -> None:
    """Make `import curate` this checkout, whatever its folder is called (the repository root is the
    package)."""
    if REPO.name == "curate":
        sys.path.insert(0, str(REPO.parent))
        return
    link = Path(tempfile.mkdtemp(prefix="curate-bench-")) / "curate"
    link.symlink_to(REPO, target_is_directory=True)
    sys.path.insert(0, str(link.parent))


import_curate()


# --- the pre-tokenized sample -------------------------------------------------------------------------
def write_sample(path: Path, vocab_size: int) -> Path:
    """Tokenize the shared Finnish text with a byte-level BPE trained on it; save token ids, document
    lengths and the EOS id as `.npz`."""
    import numpy as np

    from curate.trainer.data import iter_texts
    from curate.trainer.tokenizer import make_tokenize, train_bpe_tokenizer

    sentences = list(iter_texts(sorted(SHARED_FI.glob("*.txt"))))
    if not sentences:
        raise SystemExit(f"no text under {SHARED_FI}: give --sample (a file written by --write-sample)")
    documents = [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = train_bpe_tokenizer(documents, tmp, vocab_size=min(vocab_size, 32_768))
    ids = make_tokenize(tokenizer)(documents)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, tokens=np.concatenate([np.asarray(d, np.uint16) for d in ids]),
                        lengths=np.asarray([len(d) for d in ids], np.int64),
                        eos_id=np.int64(tokenizer.eos_token_id), vocab=np.int64(len(tokenizer)))
    return path


class SampleSource:
    """A mixture source over the pre-tokenized documents, read in order and repeated (EOS appended)."""

    name = "sample"

    def __init__(self, path: Path) -> None:
        import numpy as np

        with np.load(path) as sample:
            tokens, lengths = sample["tokens"].astype(np.int64), sample["lengths"]
            self.eos_id, self.vocab = int(sample["eos_id"]), int(sample["vocab"])
        self.documents = [d.tolist() for d in np.split(tokens, np.cumsum(lengths)[:-1])]
        self.tokens = int(lengths.sum()) + len(self.documents)
        self.epoch = self.index = 0

    def next_document(self) -> list[int]:
        ids = [*self.documents[self.index], self.eos_id]
        self.index += 1
        if self.index == len(self.documents):
            self.epoch, self.index = self.epoch + 1, 0
        return ids

    def state_dict(self) -> dict[str, int]:
        return dict(epoch=self.epoch, index=self.index)


# --- the two loops ----------------------------------------------------------------------------------
def run_trainer(config: Any, source_path: Path, vocab_size: int, device: Any, interval: int) -> dict[str, Any]:
    """The trainer's data path, step and meter over `config.steps` steps; laps of `interval` steps."""
    import torch

    from curate.trainer.data import Mixture, SequenceStream
    from curate.trainer.loader import BatchLoader
    from curate.trainer.loop import build_optimizer, take_batches, train_step, uses_bf16
    from curate.trainer.metrics import Meter
    from curate.trainer.model import build_model, compile_layers, flops_per_token

    source = SampleSource(source_path)
    loader = BatchLoader({0: SequenceStream(Mixture([source], [1.0]), config.seq_len)},
                         config.micro_batch_size, config.prefetch)
    model = build_model(config, vocab_size, source.eos_id).to(device)
    flops, parameters = flops_per_token(model, config.seq_len), sum(p.numel() for p in model.parameters())
    if config.compile:
        compile_layers(model)
    model.train()
    optimizer = build_optimizer(model, config, device)
    bf16 = uses_bf16(config.precision, device)

    def autocast() -> Any:
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    meter, laps = Meter(), []
    try:
        for step in range(1, config.steps + 1):
            with meter.waiting():
                batches = take_batches(loader, config.grad_accum_steps)
            loss, _ = train_step(model, optimizer, batches, device, autocast, config.grad_clip)
            meter.steps += 1
            if step % interval == 0:
                final_loss = loss.item()  # waits for the device, as the trainer's log line does
                laps.append(meter.lap())
    finally:
        loader.close()
    del model, optimizer
    tokens_per_step = config.micro_batch_size * config.seq_len * config.grad_accum_steps
    steady = meter.steady
    return dict(tokens_per_s=tokens_per_step * steady.steps / steady.time,
                tokens_per_s_with_warmup=tokens_per_step * meter.total.steps / meter.total.time,
                data_wait=steady.wait / steady.time, warmup_steps=meter.total.steps - steady.steps,
                final_loss=final_loss, flops_per_token=flops, parameters=parameters,
                sample_tokens=source.tokens, sample_epochs=source.epoch,
                laps=[dict(seconds=s, steps=n, wait=w) for s, n, w in laps])


def run_bare(config: Any, source_path: Path, vocab_size: int, device: Any, intervals: int,
             interval: int) -> float:
    """The peer: forward / backward / clip / AdamW over the same packed batches, already on the device;
    the median tokens/s of `intervals` timed intervals of `interval` steps after one warm-up interval."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from curate.trainer.data import Mixture, SequenceStream
    from curate.trainer.loop import build_optimizer, uses_bf16
    from curate.trainer.model import build_model, compile_layers

    source = SampleSource(source_path)
    stream = SequenceStream(Mixture([source], [1.0]), config.seq_len)
    micro_batches = config.grad_accum_steps * (intervals + 1) * interval
    windows = np.stack([stream.next_sequence()[0] for _ in range(micro_batches * config.micro_batch_size)])
    batches = torch.from_numpy(windows).view(micro_batches, config.micro_batch_size, -1).to(device)
    model = build_model(config, vocab_size, source.eos_id).to(device)
    if config.compile:
        compile_layers(model)
    model.train()
    optimizer = build_optimizer(model, config, device)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if uses_bf16(config.precision, device)
                else nullcontext())

    def step(i: int) -> None:
        for micro in range(config.grad_accum_steps):
            tokens = batches[i * config.grad_accum_steps + micro]
            with autocast:
                logits = model(input_ids=tokens[:, :-1], use_cache=False).logits
            loss = F.cross_entropy(logits.float().flatten(0, 1), tokens[:, 1:].flatten())
            (loss / config.grad_accum_steps).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    rates = []
    for k in range(intervals + 1):
        sync()
        start = time.perf_counter()
        for i in range(interval):
            step(k * interval + i)
        sync()
        rates.append(interval * config.grad_accum_steps * config.micro_batch_size * config.seq_len
                     / (time.perf_counter() - start))
    del model, optimizer
    return statistics.median(rates[1:])


# --- the loss -----------------------------------------------------------------------------------------
class PeakMemory:
    """Live bytes of the tensors created while active (a tracked allocator for the CPU): each new storage
    is counted until it is freed; `peak` is the most live at once, on top of what existed before."""

    def __init__(self) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode

        tracker = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
                out = func(*args, **(kwargs or {}))
                for tensor in out if isinstance(out, (tuple, list)) else [out]:
                    tracker._track(tensor)
                return out

        self.mode, self.live, self.peak, self._seen = Mode(), 0, 0, set()

    def _track(self, tensor: Any) -> None:
        import weakref

        import torch

        if not isinstance(tensor, torch.Tensor):
            return
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key in self._seen or storage.nbytes() == 0:
            return
        self._seen.add(key)
        self.live += storage.nbytes()
        self.peak = max(self.peak, self.live)
        weakref.finalize(storage, self._free, key, storage.nbytes())

    def _free(self, key: int, nbytes: int) -> None:
        self._seen.discard(key)
        self.live -= nbytes

    def __enter__(self) -> "PeakMemory":
        self.mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.mode.__exit__(*exc)


def previous_loss(hidden: Any, weight: Any, targets: Any) -> Any:
    """The trainer's loss before `trainer.loss`: the full logits from the output projection, then an fp32
    cross-entropy 4,096 positions at a time with activation checkpointing (no fp32 copy of the logits)."""
    import torch.nn.functional as F
    from torch.utils.checkpoint import checkpoint

    logits = hidden @ weight.T
    total = 0.0
    for chunk, chunk_targets in zip(logits.split(4096), targets.split(4096)):
        total = total + checkpoint(lambda c, t: F.cross_entropy(c.float(), t, reduction="sum"), chunk,
                                   chunk_targets, use_reentrant=False)
    return total


def transformers_loss(hidden: Any, weight: Any, targets: Any) -> Any:
    """What a `transformers` causal LM does: `lm_head` logits, upcast to fp32, `ForCausalLMLoss`."""
    from transformers.loss.loss_utils import ForCausalLMLoss

    logits = hidden @ weight.T
    return ForCausalLMLoss(logits[None], targets[None], weight.shape[0], shift_labels=targets[None],
                           num_items_in_batch=1)


def loss_benchmark(positions: int, width: int, vocabs: list[int], repeats: int) -> list[dict[str, Any]]:
    """Peak memory (above the inputs) and tokens/s of forward + backward of the three losses, on
    random hidden states and an output layer of `vocab x width`, fp32."""
    import torch

    from curate.trainer.loss import linear_cross_entropy

    losses = {"fused (trainer.loss)": linear_cross_entropy, "previous (logits + chunked CE)": previous_loss,
              "transformers (logits + fp32 CE)": transformers_loss}
    rows = []
    for vocab in vocabs:
        generator = torch.Generator().manual_seed(0)
        hidden = torch.randn(positions, width, generator=generator).requires_grad_()
        weight = (torch.randn(vocab, width, generator=generator) * 0.02).requires_grad_()
        targets = torch.randint(0, vocab, (positions,), generator=generator)
        reference = None
        for name, loss_fn in losses.items():
            times = []
            for repeat in range(repeats + 1):
                hidden.grad = weight.grad = None
                tracker = PeakMemory()
                start = time.perf_counter()
                with tracker:
                    loss = loss_fn(hidden, weight, targets)
                    loss.backward()
                times.append(time.perf_counter() - start)
                del loss
            value = float(loss_fn(hidden.detach(), weight.detach(), targets))
            reference = reference if reference is not None else value
            rows.append(dict(vocab=vocab, loss=name, peak_bytes=tracker.peak,
                             logits_bytes=positions * vocab * 4, tokens_per_s=positions / statistics.median(times[1:]),
                             relative_difference=abs(value - reference) / abs(reference)))
    return rows


def print_loss_table(rows: list[dict[str, Any]], positions: int, width: int) -> None:
    import torch

    print(f"loss benchmark: CPU, {torch.get_num_threads()} thread(s); torch {torch.__version__}; {positions} "
          f"positions x width {width}, fp32; forward + backward; peak = most bytes of tensors alive at once "
          f"above the inputs (a tracked allocator)")
    print(f"{'vocab':>8}  {'loss':34}{'peak MiB':>10}{'logits MiB':>12}{'tokens/s':>10}")
    for row in rows:
        print(f"{row['vocab']:>8,}  {row['loss']:34}{row['peak_bytes'] / 2**20:>10,.0f}"
              f"{row['logits_bytes'] / 2**20:>12,.0f}{row['tokens_per_s']:>10,.0f}")


# --- main ---------------------------------------------------------------------------------------------
PRESET_DEFAULTS = {"tiny": (64, 8), "125m": (2048, 16), "350m": (2048, 16), "1b": (2048, 8)}
"""Sequence length and micro-batch per preset."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-config", default=None, choices=list(PRESET_DEFAULTS),
                        help="model preset (default: tiny on the CPU, 1b on a GPU)")
    parser.add_argument("--seq-len", type=int, default=None, help="default: 64 tiny, 2048 otherwise")
    parser.add_argument("--micro-batch-size", type=int, default=None, help="default: 8 tiny and 1b, 16 otherwise")
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--steps", type=int, default=None,
                        help="trainer steps (default: 300 CPU: shorter runs are at the mercy of a busy "
                             "machine's noise; 60 GPU); logged in 6 intervals, the first is warm-up")
    parser.add_argument("--vocab-size", type=int, default=None,
                        help="the model's vocabulary (default 1,024 tiny, 32,768 otherwise)")
    parser.add_argument("--sample", type=Path, default=None, help="a pre-tokenized sample (--write-sample)")
    parser.add_argument("--write-sample", type=Path, default=None, help="write the sample here and stop")
    parser.add_argument("--no-compile", action="store_true", help="eager mode on GPU")
    parser.add_argument("--peak-tflops", type=float, default=None, help="peak of a GPU the table lacks")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: the tiny model gains nothing from more, and "
                             "OpenMP spin-waits make a busy machine's numbers erratic)")
    parser.add_argument("--loss", action="store_true",
                        help="benchmark the loss only: the fused one against the previous and transformers' "
                             "at vocabularies 32k and 128k (CPU: about a minute)")
    parser.add_argument("--loss-positions", type=int, default=2048, help="--loss: batch x sequence")
    parser.add_argument("--loss-width", type=int, default=64, help="--loss: the hidden width")
    args = parser.parse_args()
    if args.loss:
        import torch

        torch.set_num_threads(args.threads)
        rows = loss_benchmark(args.loss_positions, args.loss_width, [32_768, 131_072], repeats=1)
        print_loss_table(rows, args.loss_positions, args.loss_width)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
        return
    if args.write_sample:
        print(f"wrote {write_sample(args.write_sample, args.vocab_size or 32_768)}")
        return

    import torch

    from curate.trainer import TrainConfig
    from curate.trainer.loop import uses_bf16
    from curate.trainer.metrics import matmul_precision, mfu, peak_flops

    on_gpu = torch.cuda.is_available()
    device = torch.device("cuda" if on_gpu else "cpu")
    if on_gpu:
        torch.set_float32_matmul_precision("high")  # as the trainer: TF32 for what stays in fp32
    else:
        torch.set_num_threads(args.threads)
    preset = args.model_config or ("1b" if on_gpu else "tiny")
    seq_len = args.seq_len or PRESET_DEFAULTS[preset][0]
    micro_batch = args.micro_batch_size or PRESET_DEFAULTS[preset][1]
    steps = args.steps or (60 if on_gpu else 300)
    interval = max(1, steps // 6)
    vocab = args.vocab_size or (1024 if preset == "tiny" else 32_768)
    with tempfile.TemporaryDirectory() as tmp:
        sample = args.sample or write_sample(Path(tmp) / "sample.npz", vocab)
        config = TrainConfig(
            mix="sample", model_config=preset, seq_len=seq_len, micro_batch_size=micro_batch,
            grad_accum_steps=args.grad_accum, steps=steps, lr=3e-4, out_dir=tmp,
            compile=on_gpu and not args.no_compile)
        vocab = max(vocab, SampleSource(sample).vocab)
        started = time.perf_counter()
        trainer = run_trainer(config, sample, vocab, device, interval)
        if on_gpu:
            torch.cuda.empty_cache()
        bare = run_bare(config, sample, vocab, device, intervals=5, interval=interval)
        seconds = time.perf_counter() - started
    flops, n_params = trainer["flops_per_token"], trainer["parameters"]
    precision = matmul_precision(device, uses_bf16(config.precision, device))
    peak, peak_text = peak_flops(device, precision, args.peak_tflops)
    trainer_mfu = mfu(trainer["tokens_per_s"], flops, peak, 1)
    bare_mfu = mfu(bare, flops, peak, 1)
    threads = torch.get_num_threads()
    where = torch.cuda.get_device_name() if on_gpu else f"CPU, {threads} thread{'s' * (threads != 1)}"

    def percent(x: float | None) -> str:
        return f"{x:.1%}" if x is not None else "not measured"

    print(f"trainer benchmark: {where}; torch {torch.__version__}; model {preset} ({n_params / 1e6:.1f}M "
          f"parameters, vocabulary {vocab:,}); sequence {seq_len} x micro-batch {micro_batch} x accumulation "
          f"{args.grad_accum}; {precision}, {'compiled layers' if config.compile else 'eager'}; {steps} steps "
          f"in laps of {interval}; sample {trainer['sample_tokens']:,} tokens ({trainer['sample_epochs']} "
          f"full passes); {seconds:.0f} s")
    print(f"MFU = tokens/s x {flops:.4g} FLOPs/token (6N + 12 L d T) / peak {peak_text}")
    print(f"{'':22}{'tokens/s':>12}  {'MFU':<14}{'data wait':>10}")
    print(f"{'trainer':22}{trainer['tokens_per_s']:>12,.0f}  {percent(trainer_mfu):<14}"
          f"{trainer['data_wait']:>10.2%}")
    print(f"{'  with warm-up':22}{trainer['tokens_per_s_with_warmup']:>12,.0f}  "
          f"{percent(mfu(trainer['tokens_per_s_with_warmup'], flops, peak, 1)):<14}"
          f"{'(first ' + str(trainer['warmup_steps']) + ' steps)':>10}")
    print(f"{'bare loop (peer)':22}{bare:>12,.0f}  {percent(bare_mfu):<14}{'-':>10}")
    print(f"{'trainer / bare':22}{trainer['tokens_per_s'] / bare:>12.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(dict(
            device=where, torch=torch.__version__, model=preset, parameters=n_params, vocab=vocab,
            seq_len=seq_len, micro_batch_size=micro_batch, grad_accum=args.grad_accum, steps=steps,
            precision=precision, compiled=config.compile, flops_per_token=flops, peak=peak_text,
            trainer={**trainer, "mfu": trainer_mfu}, bare=dict(tokens_per_s=bare, mfu=bare_mfu),
            seconds=seconds), indent=2))


if __name__ == "__main__":
    main()
