"""Trainer throughput: tokens/s, MFU and data-wait share of `curate train`, against a bare loop.

    python benchmarks/trainer.py                                   # CPU: the tiny config, 1 thread
    python benchmarks/trainer.py --model-config 125m --seq-len 2048 --micro-batch-size 16
                                                                   # one GPU: bf16 + torch.compile

The input is the same for both: Parquet built from the Finnish text in ../shared/data/text/fi
(repeated over epochs as needed) and a byte-level BPE trained on it (or `--tokenizer`).
The peer is a bare nanoGPT-style loop on the same model, batch shape, precision, compile setting
and optimizer, fed with batches already on the device: no Parquet, tokenization, packing,
mixture, logging or checkpoints. `trainer / bare` is the share of the bare loop's throughput the
trainer keeps. Both report the median tokens/s of their timed intervals (steps / 6 steps each),
leaving out the first (compilation, warm-up); medians resist a busy machine's noise.
MFU = tokens/s x (6 N + 12 L d T) / peak bf16 FLOP/s; "not measured" without a GPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED_FI = REPO.parent / "shared" / "data" / "text" / "fi"


def prepare_data(work: Path, vocab_size: int, tokenizer: str | None) -> tuple[Path, str]:
    """Finnish documents (4 sentences each) as a Parquet shard, and a tokenizer."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate.trainer.data import iter_texts
    from curate.trainer.tokenizer import train_bpe_tokenizer

    sentences = list(iter_texts(sorted(SHARED_FI.glob("*.txt"))))
    documents = [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]
    shard = work / "fin" / "data" / "000.parquet"
    shard.parent.mkdir(parents=True)
    pq.write_table(pa.table({"text": documents}), shard, row_group_size=1000)
    if tokenizer is None:
        tokenizer = str(work / "tokenizer")
        train_bpe_tokenizer(documents, tokenizer, vocab_size=vocab_size)
    return shard.parent.parent, tokenizer


def run_trainer(config) -> dict[str, float]:
    from curate.trainer import train

    train(config)
    records = [json.loads(line) for line in (Path(config.out_dir) / "metrics.jsonl").open()]
    steady = [r for r in records if r["kind"] == "train"][1:]
    mfus = [r["mfu"] for r in steady if r["mfu"] is not None]
    return dict(tokens_per_s=statistics.median(r["tokens_per_s"] for r in steady),
                mfu=statistics.median(mfus) if mfus else None,
                data_wait=statistics.median(r["data_wait"] for r in steady))


def run_bare(config, intervals: int, interval: int) -> float:
    """The peer: forward / backward / clip / AdamW on device-resident random batches; the median
    tokens/s of `intervals` timed intervals of `interval` steps after one warm-up interval."""
    import torch

    from curate.trainer.loop import build_optimizer, next_token_loss
    from curate.trainer.model import build_model, decoder_layers
    from curate.trainer.tokenizer import load_tokenizer

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")
    tokenizer = load_tokenizer(config.tokenizer)
    model = build_model(config, len(tokenizer), tokenizer.eos_token_id).to(device).train()
    loss_fn = next_token_loss
    if config.compile if config.compile is not None else device.type == "cuda":
        for layer in decoder_layers(model):
            layer.compile()
        loss_fn = torch.compile(next_token_loss)
    optimizer = build_optimizer(model, config, device)
    shape = (4, config.micro_batch_size, config.seq_len + 1)
    batches = torch.randint(0, len(tokenizer), shape, device=device)

    def step(i: int) -> None:
        for micro in range(config.grad_accum_steps):
            tokens = batches[(i + micro) % len(batches)]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                logits = model(input_ids=tokens[:, :-1]).logits
            loss = loss_fn(logits, tokens[:, 1:])
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
    return statistics.median(rates[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-config", default=None, help="tiny (CPU default) or 125m (GPU default)")
    parser.add_argument("--seq-len", type=int, default=None, help="default: 64 tiny, 2048 otherwise")
    parser.add_argument("--micro-batch-size", type=int, default=None, help="default: 8 tiny, 16 otherwise")
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--steps", type=int, default=None,
                        help="default: 300 CPU (shorter runs are at the mercy of a busy machine's noise), 200 GPU")
    parser.add_argument("--vocab-size", type=int, default=None, help="BPE size (default 1024 tiny, 32768)")
    parser.add_argument("--tokenizer", default=None, help="an HF tokenizer instead of a trained BPE")
    parser.add_argument("--no-compile", action="store_true", help="eager mode on GPU")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: the tiny model gains nothing from more, and "
                             "OpenMP spin-waits make a busy machine's numbers erratic)")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        torch.set_num_threads(args.threads)

    from curate.trainer import TrainConfig
    from curate.trainer.metrics import peak_flops
    from curate.trainer.model import build_model, flops_per_token
    from curate.trainer.tokenizer import load_tokenizer

    on_gpu = torch.cuda.is_available()
    preset = args.model_config or ("125m" if on_gpu else "tiny")
    tiny = preset == "tiny"
    seq_len = args.seq_len or (64 if tiny else 2048)
    micro_batch = args.micro_batch_size or (8 if tiny else 16)
    steps = args.steps or (200 if on_gpu else 300)
    vocab = args.vocab_size or (1024 if tiny else 32768)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data, tokenizer = prepare_data(work, vocab, args.tokenizer)
        config = TrainConfig(
            mix=str(data), tokenizer=tokenizer, model_config=preset, seq_len=seq_len,
            micro_batch_size=micro_batch, grad_accum_steps=args.grad_accum, steps=steps,
            warmup_steps=min(20, steps // 4), lr=3e-4, log_every=max(1, steps // 6), eval_every=0,
            ckpt_every=0, out_dir=str(work / "run"), progress=False,
            compile=False if args.no_compile else None)
        trainer = run_trainer(config)
        bare = run_bare(config, intervals=5, interval=config.log_every)
        vocab_size = len(load_tokenizer(tokenizer))
        model = build_model(config, vocab_size, 0)
    flops = flops_per_token(model, seq_len)
    n_params = sum(p.numel() for p in model.parameters())
    device = torch.device("cuda" if on_gpu else "cpu")
    peak, peak_text = peak_flops(device)
    bare_mfu = bare * flops / peak if peak else None
    precision = "bf16 autocast" if on_gpu else "fp32"
    compiled = "torch.compile" if on_gpu and not args.no_compile else "eager"
    threads = torch.get_num_threads()
    where = torch.cuda.get_device_name() if on_gpu else f"CPU, {threads} thread{'s' * (threads != 1)}"

    def percent(x: float | None) -> str:
        return f"{x:.1%}" if x is not None else "not measured (no GPU)"

    print(f"trainer benchmark: {where}; model {preset} ({n_params / 1e6:.1f}M parameters, vocabulary "
          f"{vocab_size}); sequence {seq_len} x micro-batch {micro_batch} x accumulation "
          f"{args.grad_accum}; {precision}, {compiled}; {steps} steps")
    print(f"MFU = tokens/s x {flops:.4g} FLOPs/token (6N + 12 L d T) / peak {peak_text}")
    print(f"{'':22}{'tokens/s':>12}  {'MFU':<24}{'data wait':>10}")
    print(f"{'curate train':22}{trainer['tokens_per_s']:>12,.0f}  {percent(trainer['mfu']):<24}"
          f"{trainer['data_wait']:>10.1%}")
    print(f"{'bare loop (peer)':22}{bare:>12,.0f}  {percent(bare_mfu):<24}{'-':>10}")
    print(f"{'trainer / bare':22}{trainer['tokens_per_s'] / bare:>12.2f}")


if __name__ == "__main__":
    main()
