"""A model-free 0–10 document score for every language, after HPLT's Web Docs Scorer (WDS).

Characters are classed by their Unicode category: *letters* (L*, M*), *digits* (N*), *punctuation* (P*, except
``# % & * / @ \\``), *bad* (symbols S* — emoji, `|`, `©`, `€`, … —, those seven, private-use and unassigned code
points) and the rest (spaces, controls). Segments are the lines of the text (split on ``\\n``). For a document with
W letters, P punctuation, D digits and B bad characters, and the language's typical percentages p, d, b
(`scorers.web_docs.typical_*_percent`; Spanish, HPLT's reference, by default: 2.4, 1.3, 0.3):

    sp = p / 2.4,  sd = d / 1.3,  sb = b / 0.3,  k = 2.4 / p          (HPLT's language adaptation)
    lin(x; xs → ys)  = piecewise-linear through the points, flat outside them

    language    = 10 × language_score                                  (the LID probability of the document)
    long        = min(1, n_long / 10),  n_long = segments with more than 250k letters
    largest     = min(1, mean(u) + 0.1) over the segments with u > 0.5, else 0,
                  u = (min(w, 1000k) − 250k) / 750k for a segment of w letters
    punctuation = min( lin(100 P / W; 0.3sp, 0.5sp, 0.9sp, 2.5sp, 25sp → 0, 0.5, 1, 1, 0),
                       lin(q; 0.05, 0.2, 0.4 → 1, 0.6, 0) ),
                  q = share of letters in segments of more than 90k letters whose own 100 p / w < 0.5sp
    digits      = lin(100 D / W; sd, min(30sd, 100) → 1, 0)
    bad         = lin(100 B / W; sb, 2sb, 6sb, min(10sb, 100) → 1, 0.7, 0.5, 0)
    repeated    = 1 − (segments that repeat an earlier one) / segments, over the stripped segments of at least 30k
                  characters (1 when there are none)
    penalty     = v1 × v2 × mean(v3, v4), v1 ≤ v2 ≤ v3 ≤ v4 the sorted (punctuation, digits, bad, repeated)

    web_docs_score = (0.8 × language + long + largest) × penalty            (0 when W = 0; rounded to 0.001)

Differences from HPLT's WDS: the language score is the document's LID probability (WDS uses the share of letters in
segments whose own LID agrees with the document's), there is no URL or informativeness sub-score, and the digit and
bad-character scores have no extra penalty for long runs. 5 and above is what HPLT calls a good document.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa

from curate.blocks.base import Scorer, mark_dropped, set_column
from curate.language_configs.scorers import WebDocsConfig

OTHER, LETTER, DIGIT, PUNCTUATION, BAD = range(5)
UNKNOWN = 255
BAD_PUNCTUATION = frozenset("#%&*/@\\")  # punctuation by Unicode, non-linguistic for WDS
REFERENCE_PUNCTUATION, REFERENCE_DIGITS, REFERENCE_BAD = 2.4, 1.3, 0.3  # HPLT's Spanish medians
_CLASSES = np.full(0x110000, UNKNOWN, dtype=np.uint8)  # filled per process with the code points met


def _char_class(code: int) -> int:
    char = chr(code)
    category = unicodedata.category(char)
    if category[0] in "LM":
        return LETTER
    if category[0] == "N":
        return DIGIT
    if category[0] == "P":
        return BAD if char in BAD_PUNCTUATION else PUNCTUATION
    if category[0] == "S" or category in ("Co", "Cn", "Cs"):
        return BAD
    return OTHER


def char_classes(codes: np.ndarray) -> np.ndarray:
    """The class (OTHER, LETTER, DIGIT, PUNCTUATION, BAD) of each code point."""
    classes = _CLASSES[codes]
    unknown = classes == UNKNOWN
    if unknown.any():
        for code in np.unique(codes[unknown]).tolist():
            _CLASSES[code] = _char_class(code)
        classes = _CLASSES[codes]
    return classes


def _lin(x: np.ndarray, xs: list[float], ys: list[float]) -> np.ndarray:
    return np.interp(x, xs, ys)


def _repeated_score(text: str, min_chars: float) -> float:
    segments = [s for s in (line.strip() for line in text.split("\n")) if len(s) >= min_chars]
    return 1.0 - (len(segments) - len(set(segments))) / len(segments) if segments else 1.0


def web_docs_scores(texts: list[str], language_scores: np.ndarray, settings: WebDocsConfig) -> np.ndarray:
    """The WDS-style score (module docstring) of each text, given its LID probability."""
    n = len(texts)
    if n == 0:
        return np.zeros(0)
    sp = settings.typical_punctuation_percent / REFERENCE_PUNCTUATION
    sd = settings.typical_digit_percent / REFERENCE_DIGITS
    sb = settings.typical_bad_char_percent / REFERENCE_BAD
    k = 1.0 / sp
    joined = "\n".join(texts)
    codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    newline = codes == 10
    line_of_char = np.cumsum(newline) - newline  # a newline belongs to the line it ends
    line_counts = np.array([t.count("\n") + 1 for t in texts])
    lines = int(line_counts.sum())
    doc_of_line = np.repeat(np.arange(n), line_counts)
    classes = char_classes(codes)

    def per_line(kind: int) -> np.ndarray:
        return np.bincount(line_of_char[classes == kind], minlength=lines).astype(np.float64)

    def per_doc(values: np.ndarray) -> np.ndarray:
        return np.bincount(doc_of_line, weights=values, minlength=n)

    letters_line, punct_line = per_line(LETTER), per_line(PUNCTUATION)
    letters, punct = per_doc(letters_line), per_doc(punct_line)
    digits, bad = per_doc(per_line(DIGIT)), per_doc(per_line(BAD))
    safe = np.maximum(letters, 1.0)

    long_min, long_max = 250 * k, 1000 * k
    is_long = letters_line > long_min
    long_score = np.minimum(per_doc(is_long.astype(np.float64)), 10) / 10
    fill = np.clip((np.minimum(letters_line, long_max) - long_min) / (long_max - long_min), 0, 1)
    large = fill > 0.5
    large_count = per_doc(large.astype(np.float64))
    largest = np.where(large_count > 0, np.minimum(1.0, per_doc(np.where(large, fill, 0.0)) /
                                                   np.maximum(large_count, 1) + 0.1), 0.0)

    menu = 30 * k
    line_punct_percent = 100 * punct_line / np.maximum(letters_line, 1.0)
    unpunctuated = (letters_line > 3 * menu) & (line_punct_percent < 0.5 * sp)
    unpunctuated_share = per_doc(np.where(unpunctuated, letters_line, 0.0)) / safe
    punctuation = np.minimum(
        _lin(100 * punct / safe, [0.3 * sp, 0.5 * sp, 0.9 * sp, 2.5 * sp, 25 * sp], [0, 0.5, 1, 1, 0]),
        _lin(unpunctuated_share, [0.05, 0.2, 0.4], [1, 0.6, 0]))
    digit_score = _lin(100 * digits / safe, [sd, min(30 * sd, 100)], [1, 0])
    bad_score = _lin(100 * bad / safe, [sb, 2 * sb, 6 * sb, min(10 * sb, 100)], [1, 0.7, 0.5, 0])
    repeated = np.array([_repeated_score(t, menu) for t in texts])

    penalties = np.sort(np.stack([punctuation, digit_score, bad_score, repeated], axis=1), axis=1)
    penalty = penalties[:, 0] * penalties[:, 1] * penalties[:, 2:].mean(axis=1)
    language = 10 * np.clip(np.nan_to_num(language_scores, nan=0.0), 0, 1)
    score = (0.8 * language + long_score + largest) * penalty
    return np.round(np.where(letters > 0, score, 0.0), 3)


@dataclass
class WebDocsScore(Scorer):
    """Adds `web_docs_score` (0–10, HPLT Web Docs Scorer style, formula in the module docstring) from `text` and
    `language_score`; drops documents below `settings.min_score` (`web_docs.score_low`) when it is set."""

    settings: WebDocsConfig
    name = "web_docs"
    reads = ("text", "language_score")
    writes = ("web_docs_score", "drop_reason")
    score_columns = ("web_docs_score",)

    def score(self, batch: pa.Table) -> pa.Table:
        language = batch["language_score"].to_numpy(zero_copy_only=False).astype(np.float64)
        scores = web_docs_scores([text or "" for text in batch["text"].to_pylist()], language, self.settings)
        return set_column(batch, "web_docs_score", pa.array(scores, pa.float64()))

    def decide(self, batch: pa.Table) -> pa.Table:
        if self.settings.min_score is None:
            return batch
        scores = batch["web_docs_score"].to_numpy()
        return mark_dropped(batch, scores < self.settings.min_score, f"{self.name}.score_low")

    def without_threshold(self) -> WebDocsScore:
        return replace(self, settings=replace(self.settings, min_score=None))
