"""CCNet-style KenLM perplexity of each document, and training a KenLM model with `lmplz`.

Every line is normalised as CCNet's `text_normalizer.normalize` does (strip, lowercase, accents removed by NFD
without combining marks, every digit → `0`, CCNet's Unicode punctuation table — `„` → `"`, `…` → `...`, … —,
control characters removed); empty lines are skipped. With KenLM's `score(line)` = log10 P(line, with `<s>` and
`</s>`):

    perplexity = 10 ^ ( − Σ_lines score(line) / Σ_lines (words(line) + 1) )

(the +1 is the `</s>` of each line), rounded to 0.1 as CCNet does; NaN for a document with no words. Unlike
CCNet no SentencePiece step runs: `train_kenlm` trains on whitespace words of text normalised the same way, so
model and scorer agree.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.errors import UserError
from curate.blocks.base import Scorer, mark_dropped, set_column
from curate.blocks.lid import file_sha256
from curate.blocks.model_files import first_line, resolve_file
from curate.language_configs.scorers import PerplexityConfig

TRAIN_HINT = "train one with `curate train-kenlm`, or give a path or hf://owner/repo/file.binary"
_DIGIT = re.compile(r"\d")


@cache
def _punctuation_table() -> dict[int, str]:
    from datatrove.utils.perplexity import KenlmModel  # CCNet's table, as datatrove ships it

    return str.maketrans(KenlmModel.unicode_punct)


@cache
def _non_printing() -> re.Pattern:
    from datatrove.utils.perplexity import KenlmModel

    return KenlmModel.non_printing_chars_re


def normalise_line(line: str) -> str:
    """CCNet's `normalize(line)` (accent, case, numbers, punct=1)."""
    line = line.strip()
    if not line:
        return line
    line = unicodedata.normalize("NFD", line.lower())
    line = "".join(c for c in line if unicodedata.category(c) != "Mn")
    line = _DIGIT.sub("0", line)
    line = line.translate(_punctuation_table())
    return _non_printing().sub("", line)


def normalised_lines(text: str) -> list[str]:
    """The non-empty normalised lines of a document."""
    return [n for n in (normalise_line(line) for line in text.split("\n")) if n]


@cache
def _load_kenlm(path: str):
    try:
        import kenlm
    except ImportError:
        raise UserError("the perplexity scorer needs the kenlm module: `pip install kenlm` (or `make install`)") \
            from None
    return kenlm.Model(path)


def perplexity(model, text: str) -> float:
    """CCNet's document perplexity (module docstring) of `text` under a loaded `kenlm.Model`."""
    log_score, length = 0.0, 0
    for line in normalised_lines(text):
        log_score += model.score(line, bos=True, eos=True)
        length += len(line.split()) + 1
    return round(10.0 ** (-log_score / length), 1) if length else float("nan")


@dataclass
class Perplexity(Scorer):
    """Adds `perplexity` (CCNet-style, KenLM model `settings.model`); drops documents above
    `settings.max_perplexity` (`perplexity.perplexity_high`) when it is set."""

    settings: PerplexityConfig
    language: str = field(default="")
    """The config's language code, for messages."""
    name = "perplexity"
    reads = ("text",)
    writes = ("perplexity", "drop_reason")

    @property
    def where(self) -> str:
        return f"{self.language} scorers.perplexity.model".strip()

    def model_path(self) -> Path:
        return resolve_file(self.settings.model, self.where, TRAIN_HINT)

    def _model(self):
        path = self.model_path()
        try:
            return _load_kenlm(str(path))
        except UserError:
            raise
        except Exception as error:  # noqa: BLE001 - a broken file is the user's to fix
            raise UserError(f"{self.where}: cannot load {path} as a KenLM model ({first_line(error)}); "
                            f"{TRAIN_HINT}") from None

    def check(self) -> None:
        self._model()

    def provenance(self) -> dict[str, str]:
        return {f"kenlm_model:{self.settings.model}": file_sha256(str(self.model_path()))}

    score_columns = ("perplexity",)

    def score(self, batch: pa.Table) -> pa.Table:
        model = self._model()
        values = np.array([perplexity(model, text or "") for text in batch["text"].to_pylist()], dtype=np.float64)
        return set_column(batch, "perplexity", pa.array(values, pa.float64()))

    def decide(self, batch: pa.Table) -> pa.Table:
        if self.settings.max_perplexity is None:
            return batch
        values = batch["perplexity"].to_numpy()
        return mark_dropped(batch, values > self.settings.max_perplexity, f"{self.name}.perplexity_high")

    def without_threshold(self) -> Perplexity:
        return replace(self, settings=replace(self.settings, max_perplexity=None))


def find_kenlm_tool(name: str) -> Path:
    """`lmplz` / `build_binary`: on PATH, else next to this Python (the virtualenv's bin/, where `make lmplz`
    puts them)."""
    found = shutil.which(name)
    if found:
        return Path(found)
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return beside
    raise UserError(f"KenLM's {name} is not on PATH nor beside {sys.executable}: run `make lmplz` "
                    f"(builds lmplz and build_binary into .venv/bin)")


@dataclass(frozen=True)
class KenlmReport:
    """What `train_kenlm` did: lines and words of normalised training text, and the model written."""

    path: Path
    order: int
    lines: int
    words: int


def _run(command: list[str], **kwargs) -> None:
    result = subprocess.run(command, stderr=subprocess.PIPE, text=True, check=False, **kwargs)
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        raise UserError(f"{Path(command[0]).name} failed (exit {result.returncode}): "
                        f"{lines[-1] if lines else 'no message'}")


def train_kenlm(texts: Iterable[str], out: Path, *, order: int = 5, memory: str = "1G",
                discount_fallback: bool = True) -> KenlmReport:
    """Train a KenLM model of `order` with `lmplz` on `texts` (documents or lines), normalised line by line as the
    scorer normalises them; write `out` as ARPA (`.arpa`) or, for any other suffix (`.binary`, `.bin`), as
    KenLM's binary format through `build_binary`. `discount_fallback` lets lmplz train on small corpora (its
    Kneser-Ney discounts cannot be estimated from few n-grams); `memory` is lmplz's `-S`."""
    if order < 1:
        raise UserError(f"--order must be at least 1, got {order}")
    lmplz = find_kenlm_tool("lmplz")
    binary = Path(out).suffix != ".arpa"
    build_binary = find_kenlm_tool("build_binary") if binary else None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = words = 0
    with tempfile.TemporaryDirectory() as folder:
        corpus = Path(folder) / "corpus.txt"
        with corpus.open("w", encoding="utf-8") as handle:
            for text in texts:
                for line in normalised_lines(text):
                    handle.write(line + "\n")
                    lines += 1
                    words += len(line.split())
        if not words:
            raise UserError("no words to train a KenLM model on: the --text files are empty")
        arpa = Path(folder) / "model.arpa" if binary else out
        command = [str(lmplz), "-o", str(order), "-S", memory, "-T", folder + "/", "--text", str(corpus),
                   "--arpa", str(arpa)]
        if discount_fallback:
            command.append("--discount_fallback")
        _run(command, stdout=subprocess.DEVNULL)
        if build_binary is not None:
            _run([str(build_binary), str(arpa), str(out)], stdout=subprocess.DEVNULL)
    return KenlmReport(path=out, order=order, lines=lines, words=words)
