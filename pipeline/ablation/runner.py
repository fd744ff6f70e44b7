"""Train one small model per variant and seed at the same token budget, resumably.

    from curate.pipeline.ablation import AblationSettings, run_ablation
    ablation = run_ablation("out", "fin", AblationSettings(tokens=20_000_000, model="tiny",
                            eval_texts=["flores/fin_Latn.txt"], seeds=[0, 1]))
    ablation.aggregate["filtered"]["final_bpb"], ablation.statistics["snr"]

Every run uses the project's trainer (`trainer.train`) with the same tokenizer, model shape,
schedule, batch and number of steps; only the corpus (and the seed) changes. Held-out loss and
bits per byte are evaluated at `evaluations` evenly spaced points (and at step 0).

Resume: a run's result is committed as `ablation/results/<variant>.seed-<n>.json` (written whole,
then renamed) carrying a fingerprint of everything the run depends on (corpus, tokenizer, settings,
reference texts); a run whose result matches is not retrained. An unfinished run continues from its
newest trainer checkpoint in `ablation/runs/<variant>/seed-<n>/`; one whose settings changed starts
over. Without a GPU runs go one after another in this process; with GPUs (local, or the Ray cluster
in `RAY_ADDRESS`) each run is a Ray task with one GPU, so a node with 8 GPUs trains 8 runs at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.errors import UserError
from curate.pipeline.ablation.corpora import VARIANTS, Corpus, build_corpora, parse_variants
from curate.pipeline.execution.storage import Output

log = logging.getLogger("curate.ablation")

RUN_STATE = "ablation-run.json"  # in a run's folder: the fingerprint its checkpoints belong to
TOKENIZER_READY = "ablation-tokenizer.json"  # written last into a tokenizer the ablation trained
_SUFFIXES = {"k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}


def parse_tokens(text: str | int) -> int:
    """`20M` → 20,000,000 (suffixes k, M, B/G, T; decimals allowed: `1.5B`); a `UserError` otherwise."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmMbBgGtT]?)\s*", str(text).replace("_", ""))
    if not match:
        raise UserError(f"--tokens {text!r} is not a token count: write e.g. 20M, 500k or 1.5B")
    value = int(float(match.group(1)) * _SUFFIXES.get(match.group(2).lower(), 1))
    if value < 1:
        raise UserError(f"--tokens {text!r} must be at least 1")
    return value


def parse_seeds(text: str | list[int]) -> list[int]:
    """`0,1,2` → [0, 1, 2] (distinct, in order)."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()] if isinstance(text, str) else list(text)
    except ValueError:
        raise UserError(f"--seeds {text!r}: give comma-separated integers such as 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {text!r}: give one or more distinct integers such as 0,1,2")
    return seeds


@dataclass
class AblationSettings:
    """What every run of an ablation shares; only the corpus and the seed differ between runs."""

    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    """Curation steps to compare (`raw`, `lid`, `dedup`, `filtered`, `rehydrated`)."""
    tokens: int = 20_000_000
    """Training tokens of every run (rounded up to whole steps)."""
    model: str = "tiny"
    """A fresh Llama: a trainer preset (`tiny`, `125m`, `350m`, `1b`) or a config.json."""
    eval_texts: list[str] = field(default_factory=list)
    """Held-out reference texts (one document a line, or Parquet); must not be in the training data."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """One run per seed and variant; two or more give the seed spread and signal-to-noise."""
    tokenizer: str | None = None
    """HF tokenizer (folder or Hub id); default: a byte-level BPE trained on a sample of the raw corpus,
    the superset of every variant, so no variant is favoured by the vocabulary."""
    vocab_size: int = 8000
    """Vocabulary of the BPE trained when `tokenizer` is not given."""
    tokenizer_documents: int = 50_000
    """Raw documents that BPE is trained on."""
    seq_len: int = 512
    """Tokens per training sequence."""
    micro_batch_size: int = 16
    """Sequences per optimizer step."""
    lr: float = 1e-3
    """Peak learning rate (cosine schedule, warmup 5 % of the steps, down to 10 %)."""
    evaluations: int = 10
    """Evaluations of the held-out texts, evenly spaced over the run (plus one at step 0)."""
    eval_max_tokens: int = 200_000
    """Cap on the held-out tokens."""
    use_gpu: bool | None = None
    """True: Ray tasks with one GPU each; False: one run after another on this CPU; None: GPUs if any."""

    def __post_init__(self) -> None:
        from curate.trainer.config import MODEL_PRESETS

        self.variants = parse_variants(self.variants)
        self.seeds = parse_seeds(self.seeds)
        self.eval_texts = [str(p) for p in self.eval_texts]
        if self.model not in MODEL_PRESETS and not Path(self.model).is_file():
            raise UserError(f"--model {self.model!r} is neither a preset ({', '.join(MODEL_PRESETS)}) "
                            "nor a config.json file")
        for name in ("tokens", "seq_len", "micro_batch_size", "evaluations", "eval_max_tokens", "vocab_size",
                     "tokenizer_documents"):
            if getattr(self, name) < 1:
                raise UserError(f"{name.replace('_', '-')} must be at least 1 (got {getattr(self, name)})")
        if not self.lr > 0:
            raise UserError(f"--lr must be > 0 (got {self.lr})")

    @property
    def tokens_per_step(self) -> int:
        return self.seq_len * self.micro_batch_size

    @property
    def steps(self) -> int:
        return max(1, math.ceil(self.tokens / self.tokens_per_step))


@dataclass
class Run:
    """One model to train: a variant, a seed, its trainer configuration and where its result goes."""

    variant: str
    seed: int
    config: Any  # trainer.TrainConfig
    fingerprint: str
    result_path: Path

    @property
    def name(self) -> str:
        return f"{self.variant}/seed-{self.seed}"


@dataclass
class Ablation:
    """What `run_ablation` produced: per-run curves, their aggregate, statistics and the files written."""

    folder: Path
    corpora: dict[str, Corpus]
    runs: dict[str, list[dict[str, Any]]]
    """Variant → the committed result of each seed (`tokens`, `loss`, `bpb`, …)."""
    aggregate: dict[str, dict[str, Any]]
    """Variant → mean curve over seeds: what `stats.json` holds under `ablation.variants`."""
    statistics: dict[str, Any]
    trained: list[str] = field(default_factory=list)
    """Runs trained (or resumed) by this call, as `variant/seed-n`."""
    reused: list[str] = field(default_factory=list)
    """Runs whose committed result was reused."""


def run_ablation(output_root: str, language: str, settings: AblationSettings,
                 echo: Callable[[str], None] = log.info) -> Ablation:
    """Build the variants' corpora from a `curate run` output, train and evaluate one model per
    variant and seed, and write `<out>/<lang>/ablation/` and the `ablation` key of `stats.json`."""
    from curate.pipeline.ablation.report import aggregate_runs, write_outputs
    from curate.pipeline.ablation.stats import summarize

    _check_training_extra()
    root = language_root(output_root, language)
    folder = root / "ablation"
    if not settings.eval_texts:
        raise UserError("no held-out reference text: give --eval FILE (one document a line, or Parquet), "
                        "text of the language that is not in the crawl, e.g. FLORES-200")
    for path in settings.eval_texts:
        if not Path(path).exists():
            raise UserError(f"--eval {path} does not exist")
    wanted = settings.variants if settings.tokenizer else sorted(
        {*settings.variants, "raw"}, key=VARIANTS.index)
    corpora = build_corpora(root, wanted, settings.tokens, folder / "corpora")
    for variant in settings.variants:
        echo(f"corpus {variant}: {corpora[variant].documents:,} documents "
             f"({corpora[variant].weighted_documents:,} weighted), {corpora[variant].text_bytes:,} bytes")
    tokenizer, tokenizer_id = _tokenizer(settings, corpora, folder)
    runs = [_plan_run(variant, seed, settings, corpora[variant], tokenizer, tokenizer_id, folder)
            for variant in settings.variants for seed in settings.seeds]
    done = {run.name: result for run in runs if (result := _committed(run)) is not None}
    pending = [run for run in runs if run.name not in done]
    for name in done:
        echo(f"{name}: finished earlier, not retrained")
    if pending:
        done.update(_execute(pending, settings.use_gpu, echo))
    results = {v: [done[f"{v}/seed-{s}"] for s in settings.seeds] for v in settings.variants}
    aggregate = aggregate_runs(results)
    tokens = aggregate[settings.variants[0]]["tokens"]
    curves = {v: [r["bpb"] for r in runs_] for v, runs_ in results.items()}
    statistics = summarize(tokens, curves, settings.variants)
    ablation = Ablation(folder, {v: corpora[v] for v in settings.variants}, results, aggregate, statistics,
                        trained=[run.name for run in pending], reused=sorted(set(done) - {r.name for r in pending}))
    write_outputs(ablation, root, settings)
    _write_report(output_root, echo)
    return ablation


def _write_report(output_root: str, echo: Callable[[str], None]) -> None:
    """Regenerate `<out>/report.html`, whose ablation section shows the new results; the ablation's
    own files are written already, so a report that cannot be written is said, not raised."""
    from curate.pipeline.publishing.report import write_report

    try:
        echo(f"wrote {write_report(output_root)}")
    except UserError as error:
        echo(f"report.html not regenerated: {error}")


def language_root(output_root: str, language: str) -> Path:
    """`<out>/<lang_Script>` of a local run output (`fin` resolves through the language configs)."""
    output = Output(output_root)
    if not output.is_local:
        raise UserError(f"curate ablate trains on local files: copy {output_root} to a local folder "
                        "(or a filesystem every Ray node mounts) and give that path")
    base = Path(output.base)
    if (base / language).is_dir():
        return base / language
    from curate.language_configs import ConfigError, resolve_language

    try:
        code = resolve_language(language)
    except ConfigError as error:
        raise UserError(str(error)) from None
    if not (base / code).is_dir():
        raise UserError(f"{base / code} does not exist: run `curate run --lang {language} --output "
                        f"{output_root}` first, or give the output folder of that run")
    return base / code


def _check_training_extra() -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise UserError("curate ablate trains models: install the trainer with "
                        "pip install 'curate[train]'") from None


# --- tokenizer -------------------------------------------------------------------------------------
def _tokenizer(settings: AblationSettings, corpora: dict[str, Corpus], folder: Path) -> tuple[str, str]:
    """(tokenizer path or Hub id for the trainer, identity for fingerprints)."""
    from curate.trainer.tokenizer import TokenizerError, load_tokenizer

    if settings.tokenizer is not None:
        try:
            load_tokenizer(settings.tokenizer)
        except TokenizerError as error:
            raise UserError(str(error)) from None
        local = Path(settings.tokenizer)
        return settings.tokenizer, f"given:{settings.tokenizer}:{_file_digest(local) if local.exists() else ''}"
    identity = _digest(dict(corpus=corpora["raw"].fingerprint, vocab_size=settings.vocab_size,
                            documents=settings.tokenizer_documents))
    path = folder / "tokenizer"
    ready = path / TOKENIZER_READY
    if ready.is_file() and json.loads(ready.read_text()).get("identity") == identity:
        return str(path), f"trained:{identity}"
    texts = _first_texts(corpora["raw"].path, settings.tokenizer_documents)
    temporary = folder / f".tokenizer.tmp-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    from curate.trainer.tokenizer import train_bpe_tokenizer

    try:
        train_bpe_tokenizer(texts, temporary, vocab_size=settings.vocab_size)
    except TokenizerError as error:
        raise UserError(str(error)) from None
    (temporary / TOKENIZER_READY).write_text(json.dumps(dict(identity=identity, documents=len(texts))))
    shutil.rmtree(path, ignore_errors=True)
    os.replace(temporary, path)
    return str(path), f"trained:{identity}"


def _first_texts(path: str, limit: int) -> list[str]:
    """The first `limit` texts of a corpus file (its key order: a uniform sample)."""
    import pyarrow.parquet as pq

    texts: list[str] = []
    for batch in pq.ParquetFile(path).iter_batches(batch_size=2_000, columns=["text"]):
        texts.extend(batch.column(0).to_pylist()[: limit - len(texts)])
        if len(texts) >= limit:
            break
    return texts


def train_config(settings, corpus: Path, out_dir: Path, seed: int, steps: int, eval_every: int, **model):
    """The `TrainConfig` of one ablation run (validated: a bad setting is one line): `settings` gives the shape of
    the training and its evaluation, `model` the model and tokenizer fields."""
    from curate.trainer import SourceSpec, TrainConfig

    config = TrainConfig(
        mix=[SourceSpec(str(corpus.resolve()), 1.0)], steps=steps, seq_len=settings.seq_len,
        micro_batch_size=settings.micro_batch_size, lr=settings.lr, warmup_steps=max(1, round(0.05 * steps)),
        seed=seed, eval_texts=[str(Path(p).resolve()) for p in settings.eval_texts], eval_every=eval_every,
        eval_max_tokens=settings.eval_max_tokens, ckpt_every=eval_every, keep_checkpoints=1,
        log_every=max(1, min(100, eval_every)), progress=False, out_dir=str(out_dir.resolve()), **model)
    try:
        config.validate()
    except ValueError as error:
        raise UserError(str(error)) from None
    return config


# --- runs --------------------------------------------------------------------------------------------
def _plan_run(variant: str, seed: int, settings: AblationSettings, corpus: Corpus, tokenizer: str,
              tokenizer_id: str, folder: Path) -> Run:
    steps = settings.steps
    eval_every = max(1, steps // max(1, settings.evaluations))
    config = train_config(settings, Path(corpus.path), folder / "runs" / variant / f"seed-{seed}", seed, steps,
                          eval_every, tokenizer=tokenizer, model_config=settings.model)
    varying = {k: v for k, v in config.to_dict().items() if k not in ("mix", "tokenizer", "eval_texts",
                                                                       "out_dir", "progress")}
    model_file = Path(settings.model)
    fingerprint = _digest(dict(corpus=corpus.fingerprint, tokenizer=tokenizer_id, config=varying,
                               model=_file_digest(model_file) if model_file.is_file() else settings.model,
                               eval_texts=[_file_digest(Path(p)) for p in config.eval_texts]))
    return Run(variant, seed, config, fingerprint, folder / "results" / f"{variant}.seed-{seed}.json")


def _committed(run: Run) -> dict[str, Any] | None:
    """The run's committed result when it matches the run's fingerprint."""
    if not run.result_path.is_file():
        return None
    try:
        result = json.loads(run.result_path.read_text())
    except json.JSONDecodeError:
        return None
    return result if result.get("fingerprint") == run.fingerprint else None


def _prepare(run: Run) -> None:
    """Keep the run's folder (checkpoints to resume) only if it belongs to the same fingerprint."""
    folder = Path(run.config.out_dir)
    state = folder / RUN_STATE
    if folder.exists() and (not state.is_file() or json.loads(state.read_text()).get("fingerprint")
                            != run.fingerprint):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps(dict(fingerprint=run.fingerprint, variant=run.variant, seed=run.seed)))


def _execute(runs: list[Run], use_gpu: bool | None, echo: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """Train `runs` (here on the CPU, or as one-GPU Ray tasks) and commit each result as it ends."""
    for run in runs:
        _prepare(run)
    gpus = _available_gpus(use_gpu)
    results: dict[str, dict[str, Any]] = {}

    def commit(run: Run, seconds: float) -> None:
        results[run.name] = _commit(run, seconds)
        echo(f"{run.name}: final bits/byte {results[run.name]['bpb'][-1]:.4f} after "
             f"{results[run.name]['tokens'][-1]:,} tokens ({seconds:,.0f} s)")

    if not gpus:
        for run in runs:
            echo(f"{run.name}: training {run.config.steps:,} steps on the CPU")
            started = time.monotonic()
            _train_here(run.config.to_dict(), "cpu")
            commit(run, time.monotonic() - started)
        return results
    import ray

    remote = ray.remote(num_gpus=1, max_retries=2)(_train_here)  # a retry resumes from the checkpoint
    echo(f"training {len(runs)} run(s) as Ray tasks, one GPU each ({gpus:g} GPU(s) in the cluster)")
    started = time.monotonic()
    running = {remote.remote(run.config.to_dict(), None): run for run in runs}
    failed = []
    while running:
        (ref,), _ = ray.wait(list(running), num_returns=1)
        run = running.pop(ref)
        try:
            ray.get(ref)
        except ray.exceptions.RayError as error:
            failed.append(f"{run.name} ({str(error).strip().splitlines()[-1][:200]})")
            continue
        commit(run, time.monotonic() - started)
    if failed:
        raise UserError(f"{len(failed)} run(s) failed: {'; '.join(failed)}; rerun the same command to "
                        "resume them (finished runs are kept)")
    return results


def _available_gpus(use_gpu: bool | None) -> float:
    """GPUs to train on through Ray (0: train on this CPU): those of the Ray this process already
    started, of the cluster in RAY_ADDRESS, or of this machine (a local Ray is started for them)."""
    if use_gpu is False:
        return 0
    import torch

    imported = sys.modules.get("ray")
    if not ((imported is not None and imported.is_initialized()) or os.environ.get("RAY_ADDRESS")
            or torch.cuda.is_available()):
        if use_gpu:
            raise UserError("--gpu: this machine has no GPU and RAY_ADDRESS names no cluster; "
                            "use --cpu, or submit the command to a cluster with GPUs")
        return 0
    import ray

    from curate.pipeline.execution.executor import start_ray

    start_ray()
    gpus = ray.cluster_resources().get("GPU", 0)
    if not gpus and use_gpu:
        raise UserError("--gpu: the Ray cluster has no GPU; use --cpu")
    return gpus


def _train_here(config: dict[str, Any], device: str | None) -> None:
    """Train one run in this process (a Ray task's process on a GPU node, or the driver on the CPU)."""
    from curate.trainer import TrainConfig
    from curate.trainer.data import DataError
    from curate.trainer.loop import train
    from curate.trainer.tokenizer import TokenizerError

    try:
        train(TrainConfig.from_dict(config), device=device)
    except (ValueError, DataError, TokenizerError, FloatingPointError) as error:
        raise UserError(f"training {config['out_dir']}: {error}") from None


def _commit(run: Run, seconds: float) -> dict[str, Any]:
    """Read the run's evaluations (every call's, across resumes) and commit its result file."""
    folder = Path(run.config.out_dir)
    evals: dict[int, dict[str, float]] = {}
    with open(folder / "metrics.jsonl", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("kind") == "eval" and record["step"] <= run.config.steps:
                evals[record["step"]] = record  # a resumed run re-evaluates: the last record counts
    summary = json.loads((folder / "result.json").read_text())
    tokens_per_step = run.config.seq_len * run.config.micro_batch_size * run.config.grad_accum_steps
    steps = sorted(evals)
    if not steps or steps[-1] != run.config.steps:
        raise UserError(f"{run.name} ended before its last evaluation (step {steps[-1] if steps else 0} of "
                        f"{run.config.steps}); rerun the same command to resume it")
    result = dict(
        variant=run.variant, seed=run.seed, fingerprint=run.fingerprint, steps=steps,
        tokens=[s * tokens_per_step for s in steps], loss=[evals[s]["loss"] for s in steps],
        bpb=[evals[s]["bpb"] for s in steps], trained_tokens=sum(summary["source_tokens"].values()),
        epochs=summary.get("epochs", {}), tokens_per_s=summary.get("tokens_per_s"),
        seconds=seconds, checkpoint=summary.get("checkpoint"))
    Output(str(run.result_path.parent)).write_json(str(run.result_path), result)
    return result


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _file_digest(path: Path) -> str:
    if path.is_dir():
        return _digest([(p.relative_to(path).as_posix(), _file_digest(p))
                        for p in sorted(path.rglob("*")) if p.is_file()])
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
