"""fastText document classifiers: the probability of one label as a score column, and training one.

`QualityClassifier` is the DCLM / FineWeb-Edu kind of quality filter: a fastText bigram model trained on
"high quality" versus ordinary web text; `quality_score` is the probability of its high-quality label.
`FastTextLabelScore` is the shared mechanism (the toxicity classifier uses it too). Documents are given to
fastText on one line, whitespace collapsed (as for LID); `train_classifier` prepares its training text the same
way, so a model trained here sees at prediction what it saw in training.
"""

from __future__ import annotations

import math
import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa

from curate.errors import UserError
from curate.blocks.base import Scorer, mark_dropped, set_column
from curate.blocks.lid import load_fasttext
from curate.blocks.lid import file_sha256
from curate.blocks.model_files import first_line, resolve_file

TRAIN_HINT = "train one with `curate train-classifier`, or give a path or hf://owner/repo/file.bin"
# fastText (fasttext-numpy2-wheel 0.9.2) initialises its input matrix in ten blocks, one per training thread, on
# memory it does not clear: with fewer than 10 threads the rest of the matrix is whatever the heap held (training
# then diverges at random: "Encountered NaN"), and the last (rows × dim) mod 10 values need an 11th block.
MIN_TRAIN_THREADS = 11


def one_line(text: str) -> str:
    """fastText reads one line per document: whitespace (newlines included) collapsed to single spaces."""
    return " ".join(text.split())


def label_probabilities(model, texts: Sequence[str], label: str) -> np.ndarray:
    """P(`label`) of each text under a fastText classifier (0 where fastText does not return the label)."""
    if not texts:
        return np.zeros(0)
    labels, probabilities = model.predict([one_line(t or "") for t in texts], k=-1, threshold=0.0)
    out = np.zeros(len(texts))
    for index, (row, scores) in enumerate(zip(labels, probabilities)):
        for name, score in zip(row, scores):
            if name == label:
                out[index] = min(1.0, float(score))  # fastText returns P + 1e-5 (its log smoothing)
                break
    return out


@dataclass
class FastTextLabelScore(Scorer):
    """Adds column `column` = P(`label`) under the fastText model `model`; with `threshold` set, drops documents on
    the wrong side of it (`<name>.<rule>`)."""

    model: str
    label: str
    threshold: float | None = None
    language: str = ""
    """The config's language code, for messages."""

    column: ClassVar[str]
    rule: ClassVar[str]
    config_key: ClassVar[str]
    drop_above: ClassVar[bool]

    @property
    def where(self) -> str:
        return f"{self.language} {self.config_key}".strip()

    def model_path(self) -> Path:
        return resolve_file(self.model, self.where, TRAIN_HINT)

    def _model(self):
        path = self.model_path()
        try:
            return load_fasttext(str(path))
        except Exception as error:  # noqa: BLE001 - a broken file is the user's to fix
            raise UserError(f"{self.where}: cannot load {path} as a fastText model ({first_line(error)}); "
                            f"{TRAIN_HINT}") from None

    def check(self) -> None:
        labels = self._model().get_labels()
        if self.label not in labels:
            raise UserError(f"{self.where}: the model {self.model} has no label {self.label!r} "
                            f"(it has {', '.join(labels[:10])}); set the config's label")

    def provenance(self) -> dict[str, str]:
        return {f"{self.name}_model:{self.model}": file_sha256(str(self.model_path()))}

    @property
    def score_columns(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.column,)

    def score(self, batch: pa.Table) -> pa.Table:
        scores = label_probabilities(self._model(), batch["text"].to_pylist(), self.label)
        return set_column(batch, self.column, pa.array(scores, pa.float64()))

    def decide(self, batch: pa.Table) -> pa.Table:
        if self.threshold is None:
            return batch
        scores = batch[self.column].to_numpy()
        mask = scores > self.threshold if self.drop_above else scores < self.threshold
        return mark_dropped(batch, mask, f"{self.name}.{self.rule}")

    def without_threshold(self) -> FastTextLabelScore:
        return replace(self, threshold=None)


@dataclass
class QualityClassifier(FastTextLabelScore):
    """Adds `quality_score`: P(high-quality label) under a fastText quality classifier; drops documents below
    `threshold` (`quality.score_low`) when it is set."""

    name = "quality"
    reads = ("text",)
    writes = ("quality_score", "drop_reason")
    column = "quality_score"
    rule = "score_low"
    config_key = "scorers.quality.model"
    drop_above = False


@dataclass(frozen=True)
class ClassifierReport:
    """What `train_classifier` did: documents used, and precision / recall of `label` on the held-out split
    (a document is predicted `label` when its probability is at least 0.5; NaN where undefined)."""

    path: Path
    label: str
    train_documents: int
    held_out_documents: int
    precision: float
    recall: float


def _split(texts: Sequence[str], held_out: float, rng: random.Random) -> tuple[list[str], list[str]]:
    texts = [t for t in (one_line(t) for t in texts) if t]
    rng.shuffle(texts)
    count = math.ceil(len(texts) * held_out) if held_out > 0 and len(texts) > 1 else 0
    return texts[count:], texts[:count]


def train_classifier(positive: Sequence[str], negative: Sequence[str], out: Path, *, label: str = "__label__hq",
                     other_label: str = "__label__lq", held_out: float = 0.1, epoch: int = 5, lr: float = 0.1,
                     word_ngrams: int = 2, dim: int = 64, min_count: int = 1, buckets: int = 1_000_000,
                     seed: int = 0, threads: int = MIN_TRAIN_THREADS) -> ClassifierReport:
    """Train a fastText classifier of `positive` (`label`) against `negative` (`other_label`) texts with
    `fasttext.train_supervised`, keeping a seeded `held_out` share of each class out of training to measure
    precision and recall; save it to `out` (`.bin`). fastText trains with `threads` threads, at least
    `MIN_TRAIN_THREADS` (see there); its lock-free threads make training vary slightly from run to run."""
    import fasttext

    if not 0 <= held_out < 1:
        raise UserError(f"--held-out is a share in [0, 1), got {held_out}")
    rng = random.Random(seed)
    train_pos, test_pos = _split(positive, held_out, rng)
    train_neg, test_neg = _split(negative, held_out, rng)
    if not train_pos or not train_neg:
        raise UserError(f"training needs documents of both classes: {len(train_pos)} positive and "
                        f"{len(train_neg)} negative non-empty documents are left for training")
    lines = [f"{label} {t}" for t in train_pos] + [f"{other_label} {t}" for t in train_neg]
    rng.shuffle(lines)  # fastText reads in order: mix the classes
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        train_file = Path(folder) / "train.txt"
        train_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        model = fasttext.train_supervised(
            input=str(train_file), epoch=epoch, lr=lr, wordNgrams=word_ngrams, dim=dim, minCount=min_count,
            bucket=buckets, seed=seed, thread=max(threads, MIN_TRAIN_THREADS), verbose=0)
    model.save_model(str(out))
    predicted_pos = label_probabilities(model, test_pos, label) >= 0.5
    predicted_neg = label_probabilities(model, test_neg, label) >= 0.5
    true_positives, false_positives = int(predicted_pos.sum()), int(predicted_neg.sum())
    flagged = true_positives + false_positives
    return ClassifierReport(
        path=out, label=label, train_documents=len(lines), held_out_documents=len(test_pos) + len(test_neg),
        precision=true_positives / flagged if flagged else float("nan"),
        recall=true_positives / len(test_pos) if test_pos else float("nan"),
    )
