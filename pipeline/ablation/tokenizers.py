"""`curate ablate --tokenizers base,extended`: does extending the tokenizer pay off for CPT?

    from curate.pipeline.ablation.tokenizers import TokenizerAblation, run_tokenizer_ablation
    result = run_tokenizer_ablation("out", "fin", TokenizerAblation(
        model="HuggingFaceTB/SmolLM2-135M", extended="runs/tok-fin", text_bytes=50_000_000,
        eval_texts=["flores/fin_Latn.txt"], replay_eval=["flores/eng_Latn.txt"], seeds=[0, 1]))

Continues pretraining the `model` checkpoint on the language's curated shards (`<out>/<lang>/data/`) once
with its own tokenizer (`base`) and once with the extended one (`extended`, new rows initialised by
`new_embeddings`), per seed. The budget is the same in bytes of text, not tokens, since the extended
tokenizer needs fewer tokens for the same text: each run gets `ceil(text_bytes / (bytes per token x
tokens per step))` steps, bytes per token measured on a sample of the shards with its tokenizer. Held-out
bits per byte (comparable across tokenizers) is evaluated on the language's text during training, and on
the language's and a replay language's text at the end. Runs are resumable and their results committed
with a fingerprint, exactly as the curation ablation's (`runner`); the outputs go to
`<out>/<lang>/ablation/tokenizers/` (results.json, table.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.errors import UserError
from curate.pipeline.ablation.report import aggregate_runs
from curate.pipeline.ablation.runner import (Run, _check_training_extra, _committed, _digest, _execute,
                                              _file_digest, language_root, log, parse_seeds, train_config)
from curate.pipeline.ablation.stats import pooled_seed_std, step_gains
from curate.pipeline.execution.storage import Output

TOKENIZER_VARIANTS = ("base", "extended")


def parse_tokenizer_variants(text: str) -> list[str]:
    """`base,extended` → the variants, in that order; a `UserError` for anything else."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in TOKENIZER_VARIANTS]
    if unknown or not names or len(set(names)) != len(names):
        raise UserError(f"--tokenizers {text!r}: give base, extended or base,extended")
    return [name for name in TOKENIZER_VARIANTS if name in names]


@dataclass
class TokenizerAblation:
    """What every run of a tokenizer ablation shares."""

    model: str
    """The checkpoint to continue pretraining (folder or Hub id); `base` is its own tokenizer."""
    extended: str
    """The extended tokenizer (`curate extend-tokenizer`)."""
    eval_texts: list[str]
    """Held-out text of the language."""
    replay_eval: list[str] = field(default_factory=list)
    """Held-out text of a replay language (what the model already knew)."""
    variants: list[str] = field(default_factory=lambda: list(TOKENIZER_VARIANTS))
    text_bytes: int = 20_000_000
    """Bytes of training text of every run."""
    new_embeddings: str = "mean"
    embeddings_only_steps: int = 0
    seeds: list[int] = field(default_factory=lambda: [0])
    seq_len: int = 512
    micro_batch_size: int = 16
    lr: float = 1e-4
    evaluations: int = 10
    eval_max_tokens: int = 200_000
    sample_documents: int = 2_000
    """Documents of the shards on which bytes per token is measured."""
    use_gpu: bool | None = None

    def __post_init__(self) -> None:
        self.seeds = parse_seeds(self.seeds)
        if self.new_embeddings not in ("mean", "focus", "random"):
            raise UserError(f"--new-embeddings {self.new_embeddings!r}: use mean, focus or random")
        for name in ("text_bytes", "seq_len", "micro_batch_size", "evaluations", "sample_documents"):
            if getattr(self, name) < 1:
                raise UserError(f"{name.replace('_', '-')} must be at least 1 (got {getattr(self, name)})")


@dataclass
class TokenizerAblationResult:
    folder: Path
    runs: dict[str, list[dict[str, Any]]]
    """Variant → each seed's committed result (curve, `replay_bpb`, `language_bpb`, steps, bytes/token)."""
    summary: dict[str, Any]


def run_tokenizer_ablation(output_root: str, language: str, settings: TokenizerAblation,
                           echo: Callable[[str], None] = log.info) -> TokenizerAblationResult:
    """Train, evaluate and compare (see the module docstring)."""
    _check_training_extra()
    root = language_root(output_root, language)
    folder = root / "ablation" / "tokenizers"
    for path in [*settings.eval_texts, *settings.replay_eval]:
        if not Path(path).exists():
            raise UserError(f"--eval / --replay-eval {path} does not exist")
    if not settings.eval_texts:
        raise UserError("no held-out text of the language: give --eval FILE")
    tokenizers = {"base": settings.model, "extended": settings.extended}
    bytes_per_token = {v: _bytes_per_token(tokenizers[v], str(root), settings.sample_documents)
                       for v in settings.variants}
    runs = [_plan(variant, seed, settings, root, folder, tokenizers[variant], bytes_per_token[variant])
            for variant in settings.variants for seed in settings.seeds]
    done = {run.name: result for run in runs if (result := _committed(run)) is not None
            and "replay_bpb" in result}
    pending = [run for run in runs if run.name not in done]
    for run in pending:
        echo(f"{run.name}: {run.config.steps:,} steps of {settings.seq_len * settings.micro_batch_size:,} "
             f"tokens at {bytes_per_token[run.variant]:.3f} bytes/token")
    if pending:
        trained = _execute(pending, settings.use_gpu, echo)
        for run in pending:
            done[run.name] = _final_evaluation(run, trained[run.name], settings, bytes_per_token[run.variant])
    results = {v: [done[f"{v}/seed-{s}"] for s in settings.seeds] for v in settings.variants}
    summary = _summarize(results, settings)
    output = Output(str(folder))
    output.write_json(str(folder / "results.json"), dict(summary=summary, runs=results))
    (folder / "table.md").write_text(markdown_table(summary, root.name), encoding="utf-8")
    return TokenizerAblationResult(folder, results, summary)


def _bytes_per_token(tokenizer: str, corpus: str, documents: int) -> float:
    import itertools

    from curate.trainer.data import iter_texts
    from curate.trainer.tokenizer import TokenizerError, load_tokenizer, make_tokenize

    try:
        tokenize = make_tokenize(load_tokenizer(tokenizer))
    except TokenizerError as error:
        raise UserError(str(error)) from None
    texts = list(itertools.islice(iter_texts([corpus]), documents))
    if not texts:
        raise UserError(f"{corpus} has no documents to train on")
    tokens = sum(len(ids) for ids in tokenize(texts))
    return sum(len(t.encode("utf-8")) for t in texts) / max(1, tokens)


def _plan(variant: str, seed: int, settings: TokenizerAblation, root: Path, folder: Path, tokenizer: str,
          bytes_per_token: float) -> Run:
    tokens_per_step = settings.seq_len * settings.micro_batch_size
    steps = max(1, math.ceil(settings.text_bytes / (bytes_per_token * tokens_per_step)))
    eval_every = max(1, steps // settings.evaluations)
    extended = variant == "extended"
    config = train_config(
        settings, root, folder / "runs" / variant / f"seed-{seed}", seed, steps, eval_every, model=settings.model,
        tokenizer=str(Path(tokenizer).resolve()) if extended else None,
        new_embeddings=settings.new_embeddings if extended else None,
        embeddings_only_steps=min(settings.embeddings_only_steps, steps) if extended else 0)
    local = [Path(p) for p in (settings.model, tokenizer)]
    fingerprint = _digest(dict(
        config={k: v for k, v in config.to_dict().items() if k not in ("out_dir", "progress")},
        inputs=[_file_digest(p) if p.exists() else str(p) for p in local],
        data=[_file_digest(Path(f)) for f in sorted(Path(root, "data").rglob("*.parquet"))],
        eval=[_file_digest(Path(p)) for p in settings.eval_texts + settings.replay_eval]))
    return Run(variant, seed, config, fingerprint, folder / "results" / f"{variant}.seed-{seed}.json")


def _final_evaluation(run: Run, result: dict[str, Any], settings: TokenizerAblation,
                      bytes_per_token: float) -> dict[str, Any]:
    """Bits per byte of the final checkpoint on the language's and the replay language's held-out text,
    added to the committed result."""
    import torch
    from transformers import AutoModelForCausalLM

    from curate.trainer.data import iter_texts
    from curate.trainer.evaluate import EvalSet, evaluate
    from curate.trainer.tokenizer import load_tokenizer, make_tokenize

    folder = Path(result["checkpoint"]) / "model"
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    tokenizer = load_tokenizer(str(folder))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)

    def bpb(paths: list[str]) -> float | None:
        if not paths:
            return None
        texts = iter_texts(paths)
        eval_set = EvalSet.from_texts(texts, make_tokenize(tokenizer), tokenizer.eos_token_id, settings.seq_len,
                                      settings.eval_max_tokens)
        return evaluate(model, eval_set, device, settings.micro_batch_size, nullcontext)["bpb"]

    result.update(language_bpb=bpb(settings.eval_texts), replay_bpb=bpb(settings.replay_eval),
                  bytes_per_token=bytes_per_token,
                  text_bytes=[t * bytes_per_token for t in result["tokens"]],
                  vocabulary=json.loads((Path(run.config.out_dir) / "result.json").read_text()).get("vocabulary"))
    Output(str(run.result_path.parent)).write_json(str(run.result_path), result)
    return result


def _summarize(results: dict[str, list[dict[str, Any]]], settings: TokenizerAblation) -> dict[str, Any]:
    aggregate = aggregate_runs(results)
    summary: dict[str, Any] = {"variants": {}, "text_bytes": settings.text_bytes}
    for variant, runs in results.items():
        row = dict(aggregate[variant], steps=runs[0]["steps"][-1], bytes_per_token=runs[0]["bytes_per_token"])
        for key in ("language_bpb", "replay_bpb"):
            values = [r[key] for r in runs if r.get(key) is not None]
            row[key] = sum(values) / len(values) if values else None
            row[f"{key}_std"] = _std(values)
        summary["variants"][variant] = row
    curves = {v: [r["bpb"] for r in runs] for v, runs in results.items()}
    summary["gain"] = step_gains(curves, list(results))
    replay = {v: [[r["replay_bpb"]] for r in runs] for v, runs in results.items()
              if all(r.get("replay_bpb") is not None for r in runs)}
    summary["replay_gain"] = step_gains(replay, list(replay)) if len(replay) > 1 else []
    summary["pooled_seed_std"] = pooled_seed_std(curves)
    return summary


def _std(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def markdown_table(summary: dict[str, Any], language: str) -> str:
    """One row per tokenizer: steps, bytes/token, held-out bits per byte of the language and the replay
    language (mean ± seed std), then the gain of the extension and its signal-to-noise."""

    def cell(value: float | None, std: float | None) -> str:
        if value is None:
            return "–"
        return f"{value:.4f}" + (f" ± {std:.4f}" if std is not None else "")

    lines = [f"CPT on {language} at {summary['text_bytes']:,} bytes of text per run",
             "", "| tokenizer | steps | bytes/token | bpb (language) | bpb (replay) |", "|---|---:|---:|---:|---:|"]
    for name, row in summary["variants"].items():
        lines.append(f"| {name} | {row['steps']:,} | {row['bytes_per_token']:.3f} | "
                     f"{cell(row['language_bpb'], row['language_bpb_std'])} | "
                     f"{cell(row['replay_bpb'], row['replay_bpb_std'])} |")
    for label, gains in (("language", summary["gain"]), ("replay", summary["replay_gain"])):
        for gain in gains:
            snr = f", signal-to-noise {gain['snr']:.1f}" if gain.get("snr") is not None else ""
            lines.append(f"\n{gain['from']} → {gain['to']} ({label}): {gain['gain']:+.4f} bits/byte{snr}")
    return "\n".join(lines) + "\n"
