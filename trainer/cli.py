"""`curate train`, `curate train-tokenizer` and `curate extend-tokenizer`: thin typer commands over the
trainer's Python API.

    curate train-tokenizer ../shared/data/text/fi --out tok --vocab-size 8000
    curate train --mix out/fin_Latn=0.75,replay.parquet=0.25 --tokenizer tok --model-config 125m \\
        --seq-len 2048 --steps 5000 --eval-text flores/fin_Latn.txt --out runs/fin
    curate train --mix out/fin_Latn --model HuggingFaceTB/SmolLM2-135M --workers 8  # Ray Train
    curate extend-tokenizer HuggingFaceTB/SmolLM2-135M --from out/fin_Latn --add 8000 --out runs/tok-fin \
        --keep-unchanged eng.txt
    curate train --mix out/fin_Latn --model HuggingFaceTB/SmolLM2-135M --tokenizer runs/tok-fin \
        --new-embeddings mean --embeddings-only-steps 200

Registered by the application as `app.command("train")(train)`,
`app.command("train-tokenizer")(train_tokenizer)` and `app.command("extend-tokenizer")(extend_tokenizer)`. Nothing here imports torch or transformers
at import time, so `curate --help` stays fast and curation installs without the `train` extra
work. User mistakes end with one line (a usage error, or `error: ...` and exit code 1).
"""

import itertools
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from curate.trainer.config import ConfigError, TrainConfig, parse_mix

_EXTRA_HINT = "the trainer needs PyTorch and transformers: pip install 'curate[train]'"


class Schedule(str, Enum):
    cosine = "cosine"
    wsd = "wsd"
    infinite = "infinite"


class Precision(str, Enum):
    auto = "auto"
    bf16 = "bf16"
    fp32 = "fp32"


class NewEmbeddings(str, Enum):
    mean = "mean"
    focus = "focus"
    random = "random"


class Parallel(str, Enum):
    ddp = "ddp"
    fsdp = "fsdp"


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(1)


def train(
    mix: Annotated[str, typer.Option(
        help="Sources and token shares: PATH=SHARE,PATH=SHARE (shares sum to 1), or one PATH. "
             "A PATH is a Parquet file or a folder (a curate output folder: its data/ shards).")],
    tokenizer: Annotated[Optional[str], typer.Option(
        help="HF tokenizer folder or Hub id (default: the --model checkpoint's).")] = None,
    model: Annotated[Optional[str], typer.Option(
        help="HF checkpoint (folder or Hub id) to continue pretraining.")] = None,
    model_config: Annotated[Optional[str], typer.Option(
        help="Build a fresh Llama instead: tiny, 125m, 350m, 1b, or a config.json.")] = None,
    new_embeddings: Annotated[Optional[NewEmbeddings], typer.Option(
        help="With a --tokenizer that extends the --model's (curate extend-tokenizer): initialise the new "
             "tokens' embeddings as the mean of their pieces', FOCUS-style from similar tokens, or randomly.")]
        = None,
    embeddings_only_steps: Annotated[int, typer.Option(
        help="Train only the embeddings for the first K steps (everything else frozen).")] = 0,
    out: Annotated[Path, typer.Option(help="Output folder: checkpoints, metrics.jsonl, result.json.")]
        = Path("runs/cpt"),
    steps: Annotated[int, typer.Option(help="Optimizer steps of the run.")] = 1000,
    seq_len: Annotated[int, typer.Option(help="Tokens per packed sequence.")] = 2048,
    micro_batch_size: Annotated[int, typer.Option(help="Sequences per forward pass per worker.")] = 8,
    grad_accum: Annotated[int, typer.Option(help="Micro-batches per optimizer step per worker.")] = 1,
    lr: Annotated[float, typer.Option(help="Peak learning rate after the re-warmup.")] = 3e-4,
    min_lr_ratio: Annotated[float, typer.Option(help="Final learning rate as a fraction of --lr.")] = 0.1,
    schedule: Annotated[Schedule, typer.Option(
        help="cosine; wsd (warmup-stable-decay); infinite (cool-down, constant, final decay).")]
        = Schedule.cosine,
    warmup_steps: Annotated[int, typer.Option(help="Linear re-warmup steps.")] = 100,
    decay_steps: Annotated[Optional[int], typer.Option(
        help="Final decay steps of wsd / infinite (default: 20% of --steps).")] = None,
    cooldown_steps: Annotated[int, typer.Option(help="infinite: cool-down steps to the constant level.")] = 0,
    constant_lr_ratio: Annotated[float, typer.Option(help="infinite: constant level / --lr.")] = 1.0,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay (matrices only).")] = 0.1,
    grad_clip: Annotated[float, typer.Option(help="Gradient-norm clip; 0 disables.")] = 1.0,
    precision: Annotated[Precision, typer.Option(help="auto: bf16 autocast on a GPU, else fp32.")]
        = Precision.auto,
    compile: Annotated[Optional[bool], typer.Option(
        "--compile/--no-compile", help="torch.compile the decoder layers (default: on GPU).")] = None,
    parallel: Annotated[Parallel, typer.Option(help="Several workers: ddp or fsdp.")] = Parallel.ddp,
    workers: Annotated[int, typer.Option(
        help="Ray Train workers (one device each); 0 trains in this process.")] = 0,
    gpu: Annotated[Optional[bool], typer.Option(
        "--gpu/--cpu", help="Ray workers on GPUs or CPUs (default: GPUs if the cluster has them).")] = None,
    ray_address: Annotated[Optional[str], typer.Option(
        help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray).")] = None,
    eval_text: Annotated[Optional[list[Path]], typer.Option(
        help="Held-out reference texts (.txt one document a line, or Parquet); repeatable.")] = None,
    eval_every: Annotated[int, typer.Option(help="Evaluate every N steps (and at start and end).")] = 100,
    eval_max_tokens: Annotated[int, typer.Option(help="Cap on held-out tokens.")] = 200_000,
    ckpt_every: Annotated[int, typer.Option(help="Checkpoint every N steps (and at the end).")] = 500,
    keep_checkpoints: Annotated[int, typer.Option(help="Most recent checkpoints kept.")] = 2,
    resume: Annotated[bool, typer.Option(help="Continue from the latest checkpoint in --out.")] = True,
    stop_at_step: Annotated[Optional[int], typer.Option(
        help="End this invocation after this step (the schedule still spans --steps).")] = None,
    repeat: Annotated[bool, typer.Option(
        help="--no-repeat ends the run when a source is exhausted instead of starting a new epoch.")]
        = True,
    data_shards: Annotated[Optional[int], typer.Option(
        help="Independent data streams (default: the number of workers).")] = None,
    log_every: Annotated[int, typer.Option(help="Log a line every N steps.")] = 10,
    progress: Annotated[bool, typer.Option(help="Progress bar on a terminal.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the model init, the document order and the weight sampling.")] = 0,
    peak_tflops: Annotated[Optional[float], typer.Option(
        help="Peak TFLOP/s per GPU (bf16, or TF32 for fp32) for MFU when the built-in table lacks it.")] = None,
) -> None:
    """Continued pretraining of a causal LM on curated Parquet shards."""
    from curate.trainer.data import DataError, resolve_parquet_files

    try:
        sources = parse_mix(mix)
        for source in sources:
            resolve_parquet_files(source.path)
    except (ConfigError, DataError) as err:
        raise typer.BadParameter(str(err), param_hint="'--mix'") from None
    config = TrainConfig(
        mix=sources, tokenizer=tokenizer, model=model, model_config=model_config, out_dir=str(out),
        new_embeddings=new_embeddings.value if new_embeddings else None,
        embeddings_only_steps=embeddings_only_steps,
        steps=steps, seq_len=seq_len, micro_batch_size=micro_batch_size, grad_accum_steps=grad_accum,
        lr=lr, min_lr_ratio=min_lr_ratio, schedule=schedule.value, warmup_steps=warmup_steps,
        decay_steps=decay_steps, cooldown_steps=cooldown_steps, constant_lr_ratio=constant_lr_ratio,
        weight_decay=weight_decay, grad_clip=grad_clip, precision=precision.value, compile=compile,
        parallel=parallel.value, eval_texts=[str(p) for p in eval_text or []], eval_every=eval_every,
        eval_max_tokens=eval_max_tokens, ckpt_every=ckpt_every, keep_checkpoints=keep_checkpoints,
        resume=resume, stop_at_step=stop_at_step, repeat=repeat, data_shards=data_shards,
        log_every=log_every, progress=progress, seed=seed, peak_tflops=peak_tflops)
    for path in config.eval_texts:
        if not Path(path).exists():
            raise typer.BadParameter(f"{path} does not exist", param_hint="'--eval-text'")
    from curate.trainer.contamination import decontamination_notes

    for note in decontamination_notes([(s.name, s.path) for s in sources], config.eval_texts, config.text_column):
        typer.echo(note, err=True)
    result = _run(config, workers, gpu, ray_address)
    typer.echo(f"{result.steps} steps ({result.stopped}); trained tokens "
               + ", ".join(f"{name} {tokens:,} ({share:.2%})" for (name, tokens), share
                           in zip(result.source_tokens.items(), result.source_shares.values()))
               + f"; checkpoint {result.checkpoint}")


def _run(config: TrainConfig, workers: int, gpu: Optional[bool], ray_address: Optional[str]) -> Any:
    """Check what a user can get wrong, then train here or on Ray Train; one line on failure."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise _fail(_EXTRA_HINT) from None
    from curate.trainer.data import DataError
    from curate.trainer.tokenizer import TokenizerError, load_tokenizer

    try:
        config.validate()
        load_tokenizer(config.tokenizer)  # type: ignore[arg-type]
        if workers > 0:
            from curate.trainer.ray_train import launch

            return launch(config, num_workers=workers, use_gpu=gpu, ray_address=ray_address)
        from curate.trainer.loop import train as train_here

        return train_here(config)
    except (ConfigError, DataError, TokenizerError, FloatingPointError) as err:
        raise _fail(str(err)) from None


def train_tokenizer(
    inputs: Annotated[list[Path], typer.Argument(
        help="Text files (one document a line), Parquet files, or folders of either.")],
    out: Annotated[Path, typer.Option(help="Folder to save the HF tokenizer in.")],
    vocab_size: Annotated[int, typer.Option(help="Vocabulary size, including the 256 bytes and EOS.")]
        = 8000,
    min_frequency: Annotated[int, typer.Option(help="Fewest occurrences for a merge.")] = 2,
    max_documents: Annotated[Optional[int], typer.Option(help="Train on at most this many documents.")]
        = None,
    text_column: Annotated[str, typer.Option(help="Text column of Parquet inputs.")] = "text",
) -> None:
    """Train a byte-level BPE tokenizer (for trials and tests) and save it in HF format."""
    for path in inputs:
        if not path.exists():
            raise typer.BadParameter(f"{path} does not exist", param_hint="'INPUTS'")
    try:
        import tokenizers  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise _fail(_EXTRA_HINT) from None
    from curate.trainer.data import DataError, iter_texts
    from curate.trainer.tokenizer import TokenizerError, train_bpe_tokenizer

    texts = itertools.islice(iter_texts(inputs, text_column), max_documents)
    try:
        tokenizer = train_bpe_tokenizer(texts, out, vocab_size=vocab_size, min_frequency=min_frequency)
    except (TokenizerError, DataError) as err:
        raise _fail(str(err)) from None
    typer.echo(f"byte-level BPE with {len(tokenizer)} tokens saved to {out}")


def extend_tokenizer(
    base: Annotated[str, typer.Argument(
        help="The checkpoint's tokenizer: a folder, a tokenizer.json, or a Hub id in the local cache.")],
    sources: Annotated[list[Path], typer.Option(
        "--from", help="The language's curated shards (a curate output folder, Parquet) or text files; "
                       "repeatable.")],
    add: Annotated[int, typer.Option(help="Most new tokens to append.")],
    out: Annotated[Path, typer.Option(help="Folder for the extended tokenizer and extension.json.")],
    keep_unchanged: Annotated[Optional[str], typer.Option(
        help="Replay-language samples, comma-separated text files: merges that would change how they "
             "tokenize are left out (a held-out fifth of each measures what still changes).")] = None,
    heldout: Annotated[Optional[list[Path]], typer.Option(
        help="More held-out texts to report fertility on (e.g. FLORES of each language); repeatable.")] = None,
    max_documents: Annotated[int, typer.Option(help="Documents in the seeded training sample.")] = 50_000,
    heldout_documents: Annotated[int, typer.Option(
        help="Documents of the shards held out of the sample to measure fertility on.")] = 1_000,
    min_frequency: Annotated[int, typer.Option(help="Fewest weighted occurrences for a merge.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
    text_column: Annotated[str, typer.Option(help="Text column of Parquet inputs.")] = "text",
) -> None:
    """Append a language's most used tokens to a byte-level BPE tokenizer, keeping every existing id."""
    replay = [Path(p.strip()) for p in (keep_unchanged or "").split(",") if p.strip()]
    for option, paths in (("--from", sources), ("--keep-unchanged", replay), ("--heldout", heldout or [])):
        for path in paths:
            if not path.exists():
                raise typer.BadParameter(f"{path} does not exist", param_hint=f"'{option}'")
    try:
        import tokenizers  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise _fail(_EXTRA_HINT) from None
    from curate.trainer.data import DataError
    from curate.trainer.extend import REPORT
    from curate.trainer.extend import extend_tokenizer as extend
    from curate.trainer.tokenizer import TokenizerError

    try:
        report = extend(base, sources, out, add=add, keep_unchanged=replay, max_documents=max_documents,
                        heldout_documents=heldout_documents, min_frequency=min_frequency, seed=seed,
                        heldout_texts={p.name: p for p in heldout or []}, text_column=text_column)
    except (TokenizerError, DataError) as err:
        raise _fail(str(err)) from None
    typer.echo(report.table())
    last = report.first_new_id + len(report.added_tokens) - 1
    typer.echo(f"{base}: {report.base_vocab_size:,} -> {report.vocab_size:,} tokens "
               f"(+{len(report.added_tokens):,}, ids {report.first_new_id:,}..{last:,}), "
               f"{report.new_merges:,} merges appended"
               + (f", {report.skipped_for_replay:,} left out for the replay sample" if replay else ""))
    for name, changed in report.replay_changed.items():
        typer.echo(f"{name}: sample {changed['sample']:.1%} of lines changed, held-out {changed['heldout']:.1%}")
    typer.echo(f"saved to {out} (report: {out / REPORT})")
