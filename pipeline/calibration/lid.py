"""lid.176's threshold of a language, derived the way FineWeb2 derived its GlotLID ones: from the score
distribution of the language's documents, `max(0.3, min(0.9, median − σ))` (`curate calibrate --lid ft176`;
the table it writes, and the method's constants, are `language_configs/lid_thresholds.py`'s).

The documents are known text of the language made to look like what reaches LID on the web
(`reference.web_documents`), scored by the pipeline's own `LanguageId` block (same model file, same one-line
normalisation). The scores are those of the documents lid.176 assigns to the language (a run routes no other
document to it).
"""

from __future__ import annotations

import re

import numpy as np

from curate.language_configs.lid_thresholds import (CEILING, DOCUMENTS, FLOOR, MODELS, SEED, Confusion,
                                                    LidCalibration)
from curate.language_configs.validate import ConfigError


class Unrecognised(ConfigError):
    """The model gives fewer than half of the language's documents to it (`confusion` says to what)."""

    def __init__(self, message: str, confusion: Confusion):
        super().__init__(message)
        self.confusion = confusion


def calibrate_lid(code: str, sentences: list[str], reference: str, model: str = "ft176",
                  documents: int = DOCUMENTS, seed: int = SEED) -> LidCalibration:
    """The threshold of `model` for `code` from the sentences of its known text (see the module docstring)."""
    import pyarrow as pa

    from curate.blocks.lid import LanguageId
    from curate.language_configs.reference import web_documents

    if not re.fullmatch(r"[a-z]{3}_[A-Z][a-z]{3}", code):
        raise ConfigError(f"LID calibration needs a code like fin_Latn (iso639-3_Script), got {code!r}")
    if model not in MODELS:
        raise ConfigError(f"LID thresholds are derived for {', '.join(MODELS)}, not {model!r} (GlotLID's are "
                          "FineWeb2's own, imported with its configs)")
    texts = web_documents(sentences, documents, seed)
    scored = LanguageId(model=model)(pa.table({"text": pa.array(texts, pa.string())}))
    labels = np.asarray(scored["lid_label"].to_pylist())
    scores = scored["language_score"].to_numpy()
    own = scores[labels == code]
    if len(own) < documents // 2:
        names, counts = np.unique(labels, return_counts=True)
        found = ", ".join(f"{label} {n}" for label, n in zip(names, counts))
        raise Unrecognised(f"{model} assigns only {len(own)} of {documents} documents of the reference to {code} "
                           f"({found}): is the reference text of {code}?",
                           Confusion(code, model, round(len(own) / documents, 4), str(names[counts.argmax()]),
                                     reference))
    median, sigma = float(np.median(own)), float(np.std(own))
    threshold = round(max(FLOOR, min(CEILING, median - sigma)), 3)
    return LidCalibration(code=code, model=model, min_score=threshold, documents=documents,
                          assigned=round(len(own) / documents, 4), median=round(median, 4),
                          sigma=round(sigma, 4), kept=round(float((own >= threshold).sum()) / documents, 4),
                          reference=reference)
