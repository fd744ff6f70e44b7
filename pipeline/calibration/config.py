"""`curate calibrate --lang xxx_Scrp --reference FILES…`: a language config from a clean reference corpus.

The reference is tokenized with the language's tokenizer (datatrove's assignment, as the pipeline will), every
filter statistic is computed per document (the same code as stage 1), and thresholds are read off the
distributions (`METHOD` says how, key by key):

- Stopwords: the 20 most frequent tokens that contain a letter (as they are written: the check is
  case-sensitive), at least 2 of them required per document (FineWeb2's count).
- Statistics that vary with the language (mean word length, share of tokens with a letter, share of lines
  ending in punctuation, newlines per token) sit in the reference's tails, widened by a margin, because web
  text is noisier than a clean reference: a clean document of the language must pass with room to spare.
- Repetition statistics (duplicated lines, top and duplicated n-grams) are about zero in any clean text, so
  the reference cannot place them: Gopher's thresholds stay unless the reference's own 99.5th percentile,
  doubled, is higher (a language whose clean text repeats more gets more room).
- FineWeb2's language-independent settings (word-count bounds, symbol, bullet and ellipsis ratios, the
  FineWeb duplicated-line characters at 0.1, paragraph checks off) are copied.
- LID thresholds: an existing config's `lid` section is kept; otherwise GlotLID gets FineWeb2's floor (0.3), to
  be raised with FineWeb2's rule `max(0.3, min(0.9, median − σ))` of the scores of the language's web documents,
  and lid.176 its derived threshold or the documented default (`lid_thresholds.py`; derive one with
  `curate calibrate --lid ft176`).

Distributions are taken over the reference documents with at least 50 words (FineWeb2's word-count minimum):
shorter ones are dropped anyway, and their n-gram shares (one n-gram is a large share of a short text) would
distort the tails.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from curate.language_configs.fineweb2 import FINEWEB2_FIXED, datatrove_language_names, render_config, validate_text
from curate.language_configs.labels import ft176_labels
from curate.language_configs.lid_thresholds import ft176_threshold
from curate.language_configs.reference import read_reference
from curate.language_configs.validate import ConfigError

STOPWORD_COUNT = 20
GOPHER_TOP_NGRAMS = {2: 0.2, 3: 0.18, 4: 0.16}
GOPHER_DUP_NGRAMS = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.1}
GOPHER_DUP_LINE_SHARE = 0.3

METHOD = {
    "min_mean_word_length": "floor(1st percentile / 2), at least 1",
    "max_mean_word_length": "ceil(99th percentile × 1.5)",
    "min_alpha_token_share": "10th percentile",
    "min_punct_line_share": "5th percentile / 4",
    "max_newline_token_ratio": "99th percentile × 3",
    "max_dup_line_share": "max(Gopher 0.3, 99.5th percentile × 2)",
    "max_top_ngram_char_share": "per n: max(Gopher's value, 99.5th percentile × 2)",
    "max_dup_ngram_char_share": "per n: max(Gopher's value, 99.5th percentile × 2)",
    "stopwords": f"the {STOPWORD_COUNT} most frequent tokens with a letter",
}


def _quantile(values: Iterable[float], q: float) -> float:
    array = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    if not len(array):
        raise ConfigError("the reference documents give no value for a statistic (are they empty?)")
    return float(np.quantile(array, q))


def _repetition(values: list[float], gopher: float) -> float:
    return round(max(gopher, 2 * _quantile(values, 0.995)), 3)


def calibrated_values(code: str, documents: list[str]) -> dict:
    """Our config (plain data) for `code` from reference `documents`."""
    import dataclasses

    import pyarrow as pa

    from curate.blocks.statistics import FilterStatistics
    from curate.blocks.words import WordTokens
    from curate.language_configs.filters import FiltersConfig, GopherQualityConfig, GopherRepetitionConfig
    from curate.language_configs.schema import LanguageConfig

    language, _, script = code.partition("_")
    if len(language) != 3 or len(script) != 4:
        raise ConfigError(f"calibrate needs a code like fin_Latn (iso639-3_Script), got {code!r}")
    probe = LanguageConfig(language=language, script=script, name=code, word_tokenizer="datatrove",
                           filters=FiltersConfig(
                               gopher_repetition=GopherRepetitionConfig(max_top_ngram_char_share=GOPHER_TOP_NGRAMS,
                                                                        max_dup_ngram_char_share=GOPHER_DUP_NGRAMS),
                               gopher_quality=GopherQualityConfig()))
    batch = WordTokens(probe)(pa.table({"text": pa.array(documents, pa.string())}))
    counts = Counter(w for words in batch["words"].to_pylist() for w in words if any(map(str.isalpha, w)))
    stopwords = [w for w, _ in counts.most_common(STOPWORD_COUNT)]
    probe = dataclasses.replace(probe, filters=dataclasses.replace(
        probe.filters, gopher_quality=GopherQualityConfig(stopwords=stopwords, min_stopword_count=2)))
    stats = FilterStatistics(probe)(batch)
    # only documents long enough to pass the word-count check: a shorter one is dropped whatever else it shows
    long_enough = np.asarray(stats["stat_word_count"].to_numpy()) >= FINEWEB2_FIXED["gopher_quality"]["min_word_count"]
    if long_enough.sum() < 50:
        raise ConfigError(f"calibration needs at least 50 reference documents of 50 words or more, got "
                          f"{int(long_enough.sum())}")
    stats = stats.filter(long_enough)
    column = {name: stats[name].to_pylist() for name in stats.column_names if name.startswith("stat_")}

    lid = {"model": "glotlid", "min_score": {"glotlid": 0.3}}
    if code in ft176_labels().values():
        lid["min_score"]["ft176"] = ft176_threshold(code)[0]
    try:
        from curate.language_configs.schema import load_language_config

        existing = load_language_config(code)
        lid = {"model": existing.lid.model, "min_score": dict(existing.lid.min_score)}
    except ConfigError:
        pass
    return {
        "language": language,
        "script": script,
        "name": datatrove_language_names().get(code, code),
        "lid": lid,
        "word_tokenizer": "datatrove",
        "filters": {
            "gopher_repetition": {
                **FINEWEB2_FIXED["gopher_repetition"],
                "max_dup_line_share": _repetition(column["stat_dup_line_share"], GOPHER_DUP_LINE_SHARE),
                "max_top_ngram_char_share": {
                    n: _repetition(column[f"stat_top_{n}gram_char_share"], v) for n, v in GOPHER_TOP_NGRAMS.items()},
                "max_dup_ngram_char_share": {
                    n: _repetition(column[f"stat_dup_{n}gram_char_share"], v) for n, v in GOPHER_DUP_NGRAMS.items()},
            },
            "fineweb_quality": {
                **FINEWEB2_FIXED["fineweb_quality"],
                "min_punct_line_share": round(_quantile(column["stat_punct_line_share"], 0.05) / 4, 3) or None,
                "max_newline_token_ratio": round(3 * _quantile(column["stat_newline_token_ratio"], 0.99), 3),
            },
            "gopher_quality": {
                **FINEWEB2_FIXED["gopher_quality"],
                "min_mean_word_length": max(1, math.floor(_quantile(column["stat_mean_word_length"], 0.01) / 2)),
                "max_mean_word_length": math.ceil(1.5 * _quantile(column["stat_mean_word_length"], 0.99)),
                "min_alpha_token_share": round(_quantile(column["stat_alpha_token_share"], 0.10), 3),
                "stopwords": stopwords,
            },
        },
        "formatters": {
            "fix_text": {},
            "pii": {"replace_emails": True, "replace_public_ips": True},
            "table_artifacts": {"symbols": ["|"], "replace_with": "\n"},
        },
    }


def calibrate(lang_code: str, reference_files: Iterable[str | Path]) -> str:
    """YAML config text for `lang_code` (`fin_Latn`) calibrated on the documents of `reference_files` (Parquet or
    JSONL with a `text` column, or text files with documents separated by blank lines)."""
    files = list(reference_files)
    documents = read_reference(files)
    if len(documents) < 50:
        raise ConfigError(f"calibration needs at least 50 reference documents, the files hold {len(documents)}")
    data = calibrated_values(lang_code, documents)
    notes = {key: f"calibrated: {method}" for key, method in METHOD.items()}
    header = (f"{data['name']} ({lang_code}), calibrated by `curate calibrate` on {len(documents)} reference "
              f"documents ({', '.join(Path(f).name for f in files)[:200]}).\nThresholds from the statistics' "
              "distributions (method: pipeline/calibration/config.py and the README); review before use.")
    text = render_config(data, header, notes)
    validate_text(text, f"calibration of {lang_code}")
    return text
