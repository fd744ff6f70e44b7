"""Transformer scorers: Hugging Face sequence classifiers and embedding heads as stage-3 score columns.

    regression      AutoModelForSequenceClassification, one output      → `<name>` (float)
    single_label    AutoModelForSequenceClassification, softmax          → `<name>` (label), `<name>_probability`
    multilabel      AutoModelForSequenceClassification, sigmoid          → `<name>` (labels ≥ threshold),
                                                                           `<name>_probabilities` (struct)
    encoder + head  AutoModel, mean (or CLS) pooling, then an MLP head   → `<name>` (float)

Inference: a document is tokenized once per tokenizer (scorers whose checkpoints ship the same tokenizer files
share the ids), truncated per scorer to its `max_tokens` (the first tokens, or the first and last halves),
sorted by length and cut into batches of at most `batch_tokens` padded tokens. Batches depend only on the
documents of the stage-3 batch (cut the same way on every run), so reruns give identical shards. fp32 on CPU, where a score does not depend on its
batch beyond 1e-4 (padding is masked; only summation order differs); bf16 on GPU, which cannot promise that.

Models are references (`hf://owner/repo[@revision]` or a folder that exists on every node), resolved in the
process that uses them, once (`huggingface_hub` into the standard HF cache), and loaded once per process: in
each CPU worker, or once per GPU in the actor pool of `pipeline/execution/scorer_pool.py`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from curate.blocks.base import Scorer, mark_dropped, set_column
from curate.blocks.model_files import HF_PREFIX, first_line, resolve_file
from curate.errors import UserError
from curate.language_configs.scorers import TransformerScorerConfig

DEFAULT_MAX_TOKENS = 512
ROBERTA_LIKE = ("roberta", "xlm-roberta", "camembert")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "sentencepiece.bpe.model", "spm.model", "merges.txt",
                   "vocab.json", "tokenizer_config.json", "special_tokens_map.json")
LOADS: Counter[str] = Counter()
"""Model loads in this process, by checkpoint folder (the actor-pool test counts them)."""

INSTALL_HINT = "install the train extra: pip install 'curate-corpus[train]' (torch and transformers)"


def _imports():
    try:
        import torch
        import transformers
    except ImportError:
        raise UserError(f"transformer scorers need torch and transformers: {INSTALL_HINT}") from None
    return torch, transformers


@cache
def resolve_checkpoint(spec: str, where: str) -> Path:
    """The local folder of a checkpoint: `hf://owner/repo[@revision]` (downloaded once into the HF cache) or a
    folder written by `save_pretrained`."""
    if spec.startswith(HF_PREFIX):
        repo, _, revision = spec[len(HF_PREFIX):].partition("@")
        if repo.count("/") != 1:
            raise UserError(f"{where}: {spec!r} is not a Hub model: write hf://owner/repo or hf://owner/repo@rev")
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(repo, revision=revision or None))
        except Exception as error:  # noqa: BLE001 - any hub failure becomes one actionable line
            raise UserError(f"{where}: cannot load {spec} from the Hugging Face Hub ({type(error).__name__}: "
                            f"{first_line(error)[:120]}); connect to the Hub once (it is then cached), or "
                            f"save the model with save_pretrained and give its folder") from None
    folder = Path(spec).expanduser()
    if not (folder / "config.json").is_file():
        raise UserError(f"{where}: no model folder {spec!r} (a folder with config.json, as save_pretrained writes "
                        f"it, on every node), or give hf://owner/repo[@revision]")
    return folder


@cache
def tokenizer_key(folder: str) -> str:
    """A digest of a checkpoint's tokenizer files: checkpoints with the same key tokenize identically."""
    digest = hashlib.sha256()
    for name in TOKENIZER_FILES:
        path = Path(folder) / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:24]


@dataclass
class Checkpoint:
    """A loaded model (a classifier, or an encoder with its head) on one device."""

    model: Any
    head: Any
    device: str
    pooling: str
    pad_token_id: int


@cache
def load_tokenizer(folder: str):
    _, transformers = _imports()
    return transformers.AutoTokenizer.from_pretrained(folder)


@cache
def load_config(folder: str):
    _, transformers = _imports()
    return transformers.AutoConfig.from_pretrained(folder)


@cache
def load_checkpoint(folder: str, head_file: str | None, pooling: str, device: str) -> Checkpoint:
    """Load once per process and device (the actor pool loads once per GPU)."""
    torch, transformers = _imports()
    LOADS[folder] += 1
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    head = None
    if head_file is None:
        model = transformers.AutoModelForSequenceClassification.from_pretrained(folder, dtype=dtype)
    else:
        model = transformers.AutoModel.from_pretrained(folder, dtype=dtype)
        head = load_head(head_file).to(device=device, dtype=dtype)
    model.to(device).eval()
    return Checkpoint(model, head, device, pooling, load_tokenizer(folder).pad_token_id or 0)


def load_head(path: str):
    """An `nn.Sequential` of Linear layers with ReLU between them, from safetensors keys `0.weight`, `0.bias`, …"""
    torch, _ = _imports()
    from safetensors.torch import load_file

    state = load_file(path)
    indices = sorted({int(key.split(".")[0]) for key in state})
    if not indices or any(f"{i}.weight" not in state for i in indices):
        raise UserError(f"{path}: not an MLP head (expected safetensors keys 0.weight, 0.bias, 2.weight, …)")
    layers: list[Any] = []
    for position, index in enumerate(indices):
        weight = state[f"{index}.weight"]
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=f"{index}.bias" in state)
        linear.load_state_dict({k.split(".", 1)[1]: v for k, v in state.items() if k.startswith(f"{index}.")})
        layers.append(linear)
        if position < len(indices) - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers).eval()


def make_batches(lengths: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Document indices sorted by token length (ties by position), cut so that no batch pads past `batch_tokens`."""
    batches: list[list[int]] = []
    current: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (lengths[i], i)):
        if current and (len(current) + 1) * lengths[index] > batch_tokens:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def forward(checkpoint: Checkpoint, batches: list[list[list[int]]]) -> list[np.ndarray]:
    """Outputs (float32, one row per document) of each batch of token-id lists, padded per batch."""
    torch, _ = _imports()
    pad = checkpoint.pad_token_id
    outputs = []
    with torch.inference_mode():
        for batch in batches:
            width = max(len(ids) for ids in batch)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, ids in enumerate(batch):
                input_ids[row, :len(ids)] = torch.tensor(ids)
                mask[row, :len(ids)] = 1
            input_ids, mask = input_ids.to(checkpoint.device), mask.to(checkpoint.device)
            # no padding (long web pages all cut at max_tokens): no mask, the attention's fast path
            attention = None if all(len(ids) == width for ids in batch) else mask
            if checkpoint.head is None:
                result = checkpoint.model(input_ids=input_ids, attention_mask=attention).logits
            else:
                states = checkpoint.model(input_ids=input_ids, attention_mask=attention).last_hidden_state
                if checkpoint.pooling == "cls":
                    pooled = states[:, 0]
                else:
                    weights = mask.unsqueeze(-1).to(states.dtype)
                    pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1)
                result = checkpoint.head(pooled)
            outputs.append(result.float().cpu().numpy())
    return outputs


@cache
def special_tokens(folder: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The ids a checkpoint's tokenizer puts before and after one sequence (`[CLS]` … `[SEP]`, `<s>` … `</s>`)."""
    tokenizer = load_tokenizer(folder)
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    start = next(i for i in range(len(full) - len(plain) + 1) if full[i:i + len(plain)] == plain)
    return tuple(full[:start]), tuple(full[start + len(plain):])


def truncate(ids: list[int], max_tokens: int, policy: str, specials: tuple[tuple[int, ...], tuple[int, ...]]
             ) -> list[int]:
    """Cut a document's ids (without special tokens) to `max_tokens` with the special tokens around them."""
    prefix, suffix = specials
    budget = max_tokens - len(prefix) - len(suffix)
    if len(ids) > budget:
        ids = ids[:budget] if policy == "head" else ids[:budget // 2] + ids[len(ids) - (budget - budget // 2):]
    return [*prefix, *ids, *suffix]


@dataclass
class TransformerScorer:
    """One configured scorer: its reference, settings and (in a worker) its resolved checkpoint."""

    name: str
    config: TransformerScorerConfig
    language: str = ""

    @property
    def where(self) -> str:
        return f"{self.language} scorers.transformers.{self.name}".strip()

    @property
    def reference(self) -> str:
        return self.config.model or self.config.encoder or ""

    def folder(self) -> Path:
        return resolve_checkpoint(self.reference, self.where)

    def head_file(self) -> str | None:
        if self.config.head is None:
            return None
        return str(resolve_file(self.config.head, f"{self.where}.head", "give a .safetensors file or hf://…"))

    def tokenizer(self):
        return load_tokenizer(str(self.folder()))

    def labels(self) -> list[str]:
        config = load_config(str(self.folder()))
        return [config.id2label[i] for i in range(config.num_labels)] if self.config.model else []

    def checkpoint(self, device: str = "cpu") -> Checkpoint:
        try:
            return load_checkpoint(str(self.folder()), self.head_file(), self.config.pooling, device)
        except UserError:
            raise
        except Exception as error:  # noqa: BLE001 - a broken checkpoint is the user's to fix
            raise UserError(f"{self.where}: cannot load {self.reference} ({type(error).__name__}: "
                            f"{first_line(error)[:160]})") from None

    def max_tokens(self) -> int:
        """The configured `max_tokens`, else 512, never past what the model can take."""
        limit = self.tokenizer().model_max_length
        if limit > 100_000:  # the tokenizer does not say: the model's positions
            config = load_config(str(self.folder()))
            limit = getattr(config, "max_position_embeddings", DEFAULT_MAX_TOKENS)
            if config.model_type in ROBERTA_LIKE:  # their positions start after the padding index
                limit -= (config.pad_token_id or 0) + 1
        return min(self.config.max_tokens or DEFAULT_MAX_TOKENS, limit)

    def columns(self) -> tuple[str, ...]:
        if self.config.kind == "single_label":
            return (self.name, f"{self.name}_probability")
        if self.config.kind == "multilabel":
            return (self.name, f"{self.name}_probabilities")
        return (self.name,)

    def check(self) -> None:
        _imports()
        self.head_file()
        config = load_config(str(self.folder()))
        outputs = getattr(config, "num_labels", None)
        if self.config.kind == "regression" and outputs != 1:
            raise UserError(f"{self.where}: kind regression needs a model with one output, {self.reference} has "
                            f"{outputs}; set kind: single_label or multilabel")
        if self.config.kind in ("single_label", "multilabel"):
            known = set(config.id2label.values())
            unknown = [label for label in self.config.drop_labels if label not in known]
            if unknown:
                raise UserError(f"{self.where}: drop_labels {unknown} are not labels of {self.reference} "
                                f"({', '.join(sorted(known)[:12])})")

    def provenance(self) -> dict[str, str]:
        folder = self.folder()
        weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
        digest = hashlib.sha256()
        for path in weights:
            digest.update(path.read_bytes())
        if self.config.head is not None:
            digest.update(Path(self.head_file() or "").read_bytes())
        return {f"transformer_model:{self.reference}": digest.hexdigest()}

    def columns_from(self, output: np.ndarray) -> dict[str, pa.Array]:
        """The score columns of this scorer from its raw outputs (one row per document)."""
        kind = self.config.kind
        if kind in (None, "regression"):
            return {self.name: pa.array(output[:, 0].astype(np.float64))}
        labels = self.labels()
        if kind == "single_label":
            shifted = np.exp(output - output.max(axis=1, keepdims=True))
            probabilities = shifted / shifted.sum(axis=1, keepdims=True)
            best = probabilities.argmax(axis=1)
            return {self.name: pa.array([labels[i] for i in best], pa.string()),
                    f"{self.name}_probability": pa.array(probabilities[np.arange(len(best)), best].astype(np.float64))}
        probabilities = 1.0 / (1.0 + np.exp(-output.astype(np.float64)))
        assigned = [[label for label, p in zip(labels, row) if p >= self.config.threshold] for row in probabilities]
        struct = pa.StructArray.from_arrays([pa.array(probabilities[:, i]) for i in range(len(labels))], labels)
        return {self.name: pa.array(assigned, pa.list_(pa.string())), f"{self.name}_probabilities": struct}

    def drops(self, columns: dict[str, pa.Array]) -> list[tuple[np.ndarray, str]]:
        """(mask, reason) pairs of the documents this scorer's thresholds drop."""
        config, out = self.config, []
        if config.kind in (None, "regression"):
            scores = columns[self.name].to_numpy(zero_copy_only=False)
            if config.min_score is not None:
                out.append((scores < config.min_score, f"{self.name}.score_low"))
            if config.max_score is not None:
                out.append((scores > config.max_score, f"{self.name}.score_high"))
        elif config.drop_labels:
            values = columns[self.name].to_pylist()
            assigned = [[v] if isinstance(v, str) else v for v in values]
            out.append((np.array([any(label in config.drop_labels for label in row) for row in assigned], bool),
                        f"{self.name}.label"))
        return out


class ForwardPool(Protocol):
    """Runs forward passes elsewhere (the run's GPU actor pool, `pipeline/execution/scorer_pool.py`)."""

    def forward(self, scorer: TransformerScorer, batches: list[list[list[int]]]) -> list[np.ndarray]: ...


@dataclass
class TransformerScores(Scorer):
    """Adds the columns of a language's transformer scorers (see the module docstring); with thresholds set,
    drops documents with `<name>.score_low`, `<name>.score_high` or `<name>.label`. `pool`, set by the run when
    the cluster has GPUs, runs the forward passes there; otherwise they run in this process."""

    scorers: list[TransformerScorer]
    pool: ForwardPool | None = field(default=None, repr=False, compare=False)  # not part of any fingerprint

    name = "transformers"
    reads = ("text",)

    @property
    def score_columns(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(c for scorer in self.scorers for c in scorer.columns())

    @property
    def writes(self) -> tuple[str, ...]:  # type: ignore[override]
        return (*self.score_columns, "drop_reason")

    def check(self) -> None:
        for scorer in self.scorers:
            scorer.check()

    def provenance(self) -> dict[str, str]:
        return {k: v for scorer in self.scorers for k, v in scorer.provenance().items()}

    def without_threshold(self) -> TransformerScores:
        return replace(self, scorers=[replace(s, config=replace(s.config, min_score=None, max_score=None,
                                                                drop_labels=())) for s in self.scorers])

    def score(self, batch: pa.Table) -> pa.Table:
        texts = [t or "" for t in batch["text"].to_pylist()]
        token_ids: dict[str, list[list[int]]] = {}  # tokenized once per tokenizer
        for scorer in self.scorers:
            folder = str(scorer.folder())
            key = tokenizer_key(folder)
            if key not in token_ids:
                token_ids[key] = load_tokenizer(folder)(texts, add_special_tokens=False, truncation=False,
                                                        verbose=False)["input_ids"]
            limit, specials = scorer.max_tokens(), special_tokens(folder)
            inputs = [truncate(ids, limit, scorer.config.truncation, specials) for ids in token_ids[key]]
            for name, values in scorer.columns_from(self._outputs(scorer, inputs)).items():
                batch = set_column(batch, name, values)
        return batch

    def decide(self, batch: pa.Table) -> pa.Table:
        for scorer in self.scorers:
            columns = {name: batch[name].combine_chunks() for name in scorer.columns()}
            for mask, reason in scorer.drops(columns):
                batch = mark_dropped(batch, mask, reason)
        return batch

    def _outputs(self, scorer: TransformerScorer, inputs: list[list[int]]) -> np.ndarray:
        if not inputs:
            return np.zeros((0, max(1, len(scorer.labels()))), np.float32)
        order = make_batches([len(ids) for ids in inputs], scorer.config.batch_tokens)
        batches = [[inputs[i] for i in indices] for indices in order]
        if self.pool is not None and scorer.config.device != "cpu":
            results = self.pool.forward(scorer, batches)
        else:
            results = forward(scorer.checkpoint(), batches)
        output = np.zeros((len(inputs), results[0].shape[1]), np.float32)
        for indices, result in zip(order, results):
            output[indices] = result
        return output
