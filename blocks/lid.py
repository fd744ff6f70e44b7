"""fastText language identification: `language`, `language_script`, `language_score`, `top_langs`.

Models: `glotlid` (GlotLID v3, `cis-lmu/glotlid` on the Hugging Face Hub, through `huggingface_hub` into
the standard HF cache), `ft176` (fastText's lid.176.ftz, shipped with curate as package data, works
offline) or a path to any fastText LID model. Labels are normalised to `iso639-3_Script`. A model that
cannot be had stops the run with one line saying how to provide it: there is no silent fallback.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.errors import UserError
from curate.blocks.base import Block, set_column
from curate.language_configs.labels import normalise_label

GLOTLID_REPO = "cis-lmu/glotlid"
GLOTLID_FILE = "model.bin"
TOP_K = 3


FT176_SHA256 = "8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83"


def ft176_path() -> Path:
    """lid.176.ftz, shipped with curate (`blocks/models/`, CC BY-SA 3.0, see its README)."""
    path = Path(__file__).parent / "models" / "lid.176.ftz"
    if not path.is_file():
        raise UserError(f"lid.176.ftz is missing from this curate install ({path}); reinstall curate-corpus")
    return path


def resolve_model(model: str) -> Path:
    """The local file of a LID model name (`glotlid`, `ft176`) or path; downloads GlotLID once into the HF cache."""
    if model == "ft176":
        return ft176_path()
    if model == "glotlid":
        from huggingface_hub import hf_hub_download

        try:
            return Path(hf_hub_download(GLOTLID_REPO, GLOTLID_FILE))
        except Exception as error:  # noqa: BLE001 - any hub failure becomes one actionable line
            raise UserError(
                f"cannot load GlotLID from the Hugging Face Hub ({GLOTLID_REPO}/{GLOTLID_FILE}: "
                f"{type(error).__name__}); connect to the Hub once, or use --lid ft176 (offline) or --lid PATH"
            ) from None
    path = Path(model).expanduser()
    if not path.is_file():
        raise UserError(f"LID model {model!r} not found: give --lid glotlid, ft176 or the path of a fastText model")
    return path


@cache
def load_fasttext(path: str):
    import fasttext

    fasttext.FastText.eprint = lambda *args, **kwargs: None  # silence the load-time warning
    return fasttext.load_model(path)


@cache
def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@cache
def lid_model(model: str):
    """The loaded fastText model of a LID model reference, resolved on this node (once per process)."""
    path = str(resolve_model(model))
    try:
        return load_fasttext(path)
    except Exception as error:  # noqa: BLE001 - a broken or unreadable file becomes one line
        raise UserError(f"cannot load LID model {path}: {error}") from None


@dataclass
class LanguageId(Block):
    """Predicts the language of `text`: adds `language` (iso639-3), `language_script`, `language_score`,
    `top_langs` (FineWeb2's JSON of the top scores) and `lid_label` (`fin_Latn`).

    The block holds only the model's reference (`ft176`, `glotlid` or a path that exists on every node): each
    worker resolves it on its own node, never through a path the driver resolved."""

    name = "lid"
    reads = ("text",)
    writes = ("language", "language_script", "language_score", "top_langs", "lid_label")
    model: str = "ft176"

    def check(self) -> None:
        lid_model(self.model)

    def provenance(self) -> dict[str, str]:
        return {f"lid_model:{self.model}": file_sha256(str(resolve_model(self.model)))}

    def apply(self, batch: pa.Table) -> pa.Table:
        model = lid_model(self.model)
        texts = [" ".join(t.split()) for t in batch["text"].to_pylist()]  # fastText predicts one line
        labels, scores = model.predict(texts, k=TOP_K) if texts else ([], [])
        codes = [[normalise_label(label) for label in row] for row in labels]
        best = [row[0] if row else "und_Zyyy" for row in codes]
        batch = set_column(batch, "lid_label", pa.array(best, pa.string()))
        batch = set_column(batch, "language", pa.array([c.split("_")[0] for c in best], pa.string()))
        batch = set_column(batch, "language_script", pa.array([c.partition("_")[2] for c in best], pa.string()))
        batch = set_column(
            batch, "language_score", pa.array([float(np.round(s[0], 6)) if len(s) else 0.0 for s in scores])
        )
        top = [
            json.dumps({f"{c}_score": round(float(s), 4) for c, s in zip(row, score_row)})
            for row, score_row in zip(codes, scores)
        ]
        return set_column(batch, "top_langs", pa.array(top, pa.string()))

    def predict(self, texts: list[str], k: int = TOP_K) -> tuple[list[list[str]], list[np.ndarray]]:
        """The top-`k` labels (normalised, `fin_Latn`) and probabilities of each one-line text."""
        if not texts:
            return [], []
        labels, scores = lid_model(self.model).predict(texts, k=k)
        return [[normalise_label(label) for label in row] for row in labels], list(scores)
