"""Configuration of a CPT run: one dataclass, one docstring per field.

Torch-free on purpose: `curate --help` and the CLI's argument checks import this module
without the `train` extra installed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


class ConfigError(ValueError):
    """A user mistake in the run's configuration; its message is one line that says what to do."""


@dataclass(frozen=True)
class SourceSpec:
    """One source of the data mixture: Parquet file(s) and the share of training tokens it gets."""

    path: str
    """A Parquet file, or a folder: every `**/*.parquet` under it (a curate output folder: under `data/`)."""
    share: float
    """Target share of the training tokens drawn from this source, in (0, 1]."""

    @property
    def name(self) -> str:
        """Short display name: the file or folder name without `.parquet` (`out/fin_Latn` -> `fin_Latn`)."""
        p = Path(self.path.rstrip("/"))
        return p.name.removesuffix(".parquet") or str(p)


def parse_mix(text: str) -> list[SourceSpec]:
    """Parse `--mix`: `PATH=SHARE,PATH=SHARE,...` (shares sum to 1), or a single `PATH` (share 1).

    >>> parse_mix("out/fin_Latn=0.75,replay.parquet=0.25")[1]
    SourceSpec(path='replay.parquet', share=0.25)
    """
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ConfigError("--mix is empty: give PATH or PATH=SHARE,PATH=SHARE,...")
    specs: list[SourceSpec] = []
    for item in items:
        if "=" not in item:
            if len(items) > 1:
                raise ConfigError(f"--mix item {item!r} has no share: write PATH=SHARE for every source")
            specs.append(SourceSpec(item, 1.0))
            continue
        path, _, share_text = item.rpartition("=")
        try:
            share = float(share_text)
        except ValueError:
            raise ConfigError(f"--mix item {item!r}: share {share_text!r} is not a number") from None
        if not path:
            raise ConfigError(f"--mix item {item!r} has no path")
        if not (0.0 < share <= 1.0) or not math.isfinite(share):
            raise ConfigError(f"--mix item {item!r}: a share must be in (0, 1]")
        specs.append(SourceSpec(path, share))
    total = sum(s.share for s in specs)
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(f"--mix shares sum to {total:g}, not 1: adjust them so they add up to 1")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"--mix names a source twice (or two with the same name): {', '.join(names)}")
    return specs


MODEL_PRESETS: dict[str, dict[str, Any]] = {
    # Llama-shaped configurations for trials; the vocabulary comes from the tokenizer.
    "tiny": dict(hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True),
    "125m": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                 num_attention_heads=12, num_key_value_heads=12, tie_word_embeddings=True),
    "350m": dict(hidden_size=1024, intermediate_size=2816, num_hidden_layers=24,
                 num_attention_heads=16, num_key_value_heads=16, tie_word_embeddings=True),
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
               num_attention_heads=32, num_key_value_heads=8, tie_word_embeddings=True),
}
"""Named model shapes for `model_config` (a `config.json` path works too)."""


@dataclass
class TrainConfig:
    """Everything one CPT run needs. Paths may be local; for a multi-node run they must be on a
    filesystem every node sees (the output folder too)."""

    # --- data ---------------------------------------------------------------------------------
    mix: list[SourceSpec] | str = field(default_factory=list)
    """Sources and token shares: a list of `SourceSpec` or the `--mix` string `PATH=SHARE,...`."""
    text_column: str = "text"
    """Parquet column holding the document text."""
    weight_column: str = "weight"
    """Parquet column of integer repetitions (curate's rehydration weights); absent means 1."""
    repeat: bool = True
    """When a source has been read completely, start a new epoch of it; False ends the run there."""
    seq_len: int = 2048
    """Tokens per training sequence; documents are packed across sequences with EOS separators."""
    data_shards: int | None = None
    """Independent data streams the global batch is drawn from (default: the number of workers).
    Each worker owns `data_shards / world_size` of them and draws its micro-batches from them in
    turn; fixing it makes the data independent of the number of workers."""
    prefetch: int = 4
    """Micro-batches tokenized and packed ahead of the GPU by a background thread."""

    # --- tokenizer and model ------------------------------------------------------------------
    tokenizer: str | None = None
    """HF tokenizer: a folder or a Hub id (default: the `model` checkpoint's tokenizer)."""
    model: str | None = None
    """HF causal-LM checkpoint (folder or Hub id) to continue pretraining from."""
    model_config: str | None = None
    """Build a fresh Llama instead: a preset name (`tiny`, `125m`, `350m`, `1b`) or a config.json."""
    new_embeddings: Literal["mean", "focus", "random"] | None = None
    """With a `tokenizer` that extends the `model` checkpoint's (`curate extend-tokenizer`): grow the
    embeddings and initialise the new tokens' rows: `mean` of their pieces' rows, `focus` (similar
    old tokens, weighted), or `random` (the model's init); see `trainer.embeddings`."""
    embeddings_only_steps: int = 0
    """Train only the input and output embeddings for the first this many steps (the rest frozen)."""

    # --- optimisation -------------------------------------------------------------------------
    steps: int = 1000
    """Optimizer steps of the whole run (the LR schedule spans them)."""
    micro_batch_size: int = 8
    """Sequences per forward pass on one worker."""
    grad_accum_steps: int = 1
    """Micro-batches accumulated per optimizer step on each worker."""
    lr: float = 3e-4
    """Peak learning rate, reached after the (re-)warmup."""
    min_lr_ratio: float = 0.1
    """Final learning rate as a fraction of `lr`."""
    schedule: Literal["cosine", "wsd", "infinite"] = "cosine"
    """`cosine`: warmup then cosine decay. `wsd`: warmup, stable, linear decay over `decay_steps`.
    `infinite`: warmup, cosine cool-down to `constant_lr_ratio` over `cooldown_steps`, constant,
    then a final linear decay over `decay_steps` (Ibrahim et al., 2024)."""
    warmup_steps: int = 100
    """Linear (re-)warmup from 0 to `lr`."""
    decay_steps: int | None = None
    """Length of the final decay of `wsd` / `infinite` (default: 20 % of `steps`)."""
    cooldown_steps: int = 0
    """`infinite` only: steps of the cosine cool-down from `lr` to the constant level."""
    constant_lr_ratio: float = 1.0
    """`infinite` only: the constant level as a fraction of `lr`."""
    weight_decay: float = 0.1
    """AdamW decoupled weight decay, on matrices only (not norms or biases)."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW betas."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this; 0 disables clipping."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """`auto` is bf16 autocast on a GPU that supports it, fp32 otherwise (weights stay fp32)."""
    compile: bool | None = None
    """`torch.compile` the decoder layers (one graph they share); None means on a GPU only."""
    parallel: Literal["ddp", "fsdp"] = "ddp"
    """How several workers share the model: replicate (DDP) or shard it (FSDP2)."""
    seed: int = 0
    """Seeds model initialisation, the document order (row groups and rows, per pass) and the
    weight-sampling of the data."""

    # --- evaluation, checkpoints, logs --------------------------------------------------------
    eval_texts: list[str] = field(default_factory=list)
    """Held-out reference texts: .txt files (one document a line) or Parquet files / folders."""
    eval_every: int = 100
    """Evaluate every this many steps (and at the start and end); 0 evaluates only at the ends."""
    eval_max_tokens: int = 200_000
    """Cap on the held-out tokens (whole documents are kept, so bits-per-byte stays exact)."""
    out_dir: str = "runs/cpt"
    """Checkpoints (`checkpoints/step_NNNNNN/`), `metrics.jsonl` and `result.json` go here."""
    ckpt_every: int = 500
    """Save a checkpoint every this many steps (and at the end); 0 saves only at the end."""
    keep_checkpoints: int = 2
    """Keep this many most recent checkpoints; older ones are deleted after a save."""
    resume: bool = True
    """Continue from the latest checkpoint in `out_dir` when there is one."""
    stop_at_step: int | None = None
    """End this invocation after this step (checkpointing there) though the schedule runs to
    `steps`, e.g. to split a run over time-limited jobs; resuming continues it."""
    log_every: int = 10
    """Log a line (loss, lr, tokens/s, MFU, data wait, mixture) every this many steps."""
    progress: bool = True
    """Show a progress bar when stderr is a terminal."""
    peak_tflops: float | None = None
    """Peak TFLOP/s of one accelerator in the precision that runs (bf16, or TF32 for fp32 on a GPU)
    for MFU, if the built-in table does not know it."""

    def __post_init__(self) -> None:
        if isinstance(self.mix, str):
            self.mix = parse_mix(self.mix)
        self.mix = [s if isinstance(s, SourceSpec) else SourceSpec(**s) for s in self.mix]
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        self.eval_texts = [str(p) for p in self.eval_texts]
        if self.tokenizer is None and self.model is not None:
            self.tokenizer = self.model

    @property
    def sources(self) -> list[SourceSpec]:
        """The mixture, parsed."""
        assert isinstance(self.mix, list)
        return self.mix

    @property
    def final_decay_steps(self) -> int:
        """`decay_steps`, or its default of 20 % of the run."""
        return self.decay_steps if self.decay_steps is not None else max(1, round(0.2 * self.steps))

    def validate(self) -> None:
        """Raise `ConfigError` (one line) for a configuration that cannot run."""
        if not self.sources:
            raise ConfigError("no training data: give --mix PATH or PATH=SHARE,PATH=SHARE,...")
        if abs(sum(s.share for s in self.sources) - 1.0) > 1e-6:
            raise ConfigError("the shares of the mixture must sum to 1")
        if self.tokenizer is None:
            raise ConfigError("no tokenizer: give --tokenizer (a folder or Hub id) or --model")
        if (self.model is None) == (self.model_config is None):
            raise ConfigError("give exactly one of --model (a checkpoint to continue) "
                              "and --model-config (a preset or config.json to build a fresh model)")
        if (self.model_config is not None and self.model_config not in MODEL_PRESETS
                and not Path(self.model_config).is_file()):
            raise ConfigError(f"--model-config {self.model_config!r} is neither a preset "
                              f"({', '.join(MODEL_PRESETS)}) nor a config.json file")
        positive = dict(steps=self.steps, seq_len=self.seq_len, micro_batch_size=self.micro_batch_size,
                        grad_accum_steps=self.grad_accum_steps, prefetch=self.prefetch,
                        log_every=self.log_every, keep_checkpoints=self.keep_checkpoints)
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"{name} must be at least 1 (got {value})")
        if self.lr <= 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError("lr must be > 0 and min_lr_ratio within [0, 1]")
        if self.schedule not in ("cosine", "wsd", "infinite"):
            raise ConfigError(f"unknown schedule {self.schedule!r}: use cosine, wsd or infinite")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"unknown precision {self.precision!r}: use auto, bf16 or fp32")
        if self.parallel not in ("ddp", "fsdp"):
            raise ConfigError(f"unknown parallelism {self.parallel!r}: use ddp or fsdp")
        if self.warmup_steps < 0 or self.cooldown_steps < 0 or self.final_decay_steps < 1:
            raise ConfigError("warmup_steps and cooldown_steps must be >= 0, decay_steps >= 1")
        if self.schedule != "cosine" and (self.warmup_steps + self.cooldown_steps
                                          + self.final_decay_steps > self.steps):
            raise ConfigError("warmup + cooldown + decay steps exceed --steps")
        if self.new_embeddings not in (None, "mean", "focus", "random"):
            raise ConfigError(f"unknown --new-embeddings {self.new_embeddings!r}: use mean, focus or random")
        if self.new_embeddings is not None and self.model is None:
            raise ConfigError("--new-embeddings extends a --model checkpoint's embeddings; a --model-config "
                              "model is built for its tokenizer already")
        if not 0 <= self.embeddings_only_steps <= self.steps:
            raise ConfigError("embeddings_only_steps must be within 0..steps")
        if self.data_shards is not None and self.data_shards < 1:
            raise ConfigError("data_shards must be at least 1")
        if self.stop_at_step is not None and not 0 < self.stop_at_step <= self.steps:
            raise ConfigError("stop_at_step must be within 1..steps")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (for checkpoints and for shipping the config to Ray workers)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Inverse of `to_dict`; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown TrainConfig field(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    def with_absolute_paths(self) -> "TrainConfig":
        """A copy whose local paths are absolute (Ray workers run in another working folder)."""

        def absolute(p: str | None) -> str | None:
            return str(Path(p).resolve()) if p is not None and Path(p).exists() else p

        return dataclasses.replace(
            self,
            mix=[SourceSpec(str(Path(s.path).resolve()), s.share) for s in self.sources],
            tokenizer=absolute(self.tokenizer), model=absolute(self.model),
            model_config=absolute(self.model_config),
            eval_texts=[str(Path(p).resolve()) for p in self.eval_texts],
            out_dir=str(Path(self.out_dir).resolve()),
        )
