"""Helpers for the filter tests: Finnish text from ../shared/data/text/fi, spam built from it, and datatrove's
three filters set up exactly as FineWeb2's pipeline sets them up."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pyarrow as pa
import yaml

from reference_documents import documents_from_sentences

from curate.blocks.filters import rule_for

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
FINEWEB2_CONFIGS = SHARED / "reference" / "fineweb2" / "configs"


def finnish_sentences() -> list[str]:
    folder = SHARED / "data" / "text" / "fi"
    return [line for path in sorted(folder.glob("*.txt")) for line in path.read_text(encoding="utf-8").splitlines()]


def finnish_documents(count: int = 200) -> list[str]:
    """Documents of 2-6 paragraphs of 2-6 consecutive sentences (UD Finnish and WMT news)."""
    return documents_from_sentences(finnish_sentences(), seed=1)[:count]


def make_spam(documents: list[str], seed: int = 7) -> list[str]:
    """Kinds of web junk, each built from real Finnish text, so that every rule has documents to catch."""
    rng = random.Random(seed)
    docs = [d for d in documents if len(d) > 600]
    spam: list[str] = []
    for doc in docs[:8]:
        lines = doc.split("\n")
        words = doc.split()
        spam += [
            "\n".join(lines + lines[:2]),                                 # repeated lines
            doc + " " + " ".join([lines[0]] * 3),                          # repeated sentence → n-grams
            "\n".join(words[:80]),                                         # one word a line (menu)
            "\n".join(line.rstrip(".!?\"'") for line in lines),            # no terminal punctuation
            " ".join(words[:30]) + ".",                                    # too short
            doc + "\n" + " ".join(f"#{w.strip('.,')}" for w in words[:40]),  # hashtags
            "\n".join(line[:150] + "..." for line in lines),              # ellipsis lines
            "\n".join("- " + line for line in lines),                      # bullet list
            doc + "\n" + " ".join(str(rng.randint(0, 10**6)) for _ in range(120)),  # numbers
            " ".join("".join(words[i:i + 3]) for i in range(0, len(words), 3)),  # glued words
            "\n".join(lines + ["Lähde:" + "".join(words[:25])] * 2),     # long duplicated line
            " ".join(w for w in words if w not in {"ja", "on", "oli", "ei", "se", "että"}),  # few stopwords
        ]
    spam += ["", "\n\n", "   ", "#" * 100, "...\n" * 30, "Kissa. " * 60]
    return spam


def fineweb2_config_path(code: str) -> Path:
    """FineWeb2's `configs/<code>.yml`, from the shipped languages' copies or the sample of further ones."""
    path = FINEWEB2_CONFIGS / f"{code}.yml"
    return path if path.exists() else FINEWEB2_CONFIGS.with_name("configs-more") / f"{code}.yml"


def fineweb2_raw(code: str, path: Path | None = None) -> dict:
    return yaml.safe_load((path or fineweb2_config_path(code)).read_text(encoding="utf-8"))


def datatrove_fineweb2_filters(code: str, path: Path | None = None) -> list:
    """datatrove's filters with the arguments of fineweb-2-pipeline.py (huggingface/fineweb-2), from FineWeb2's
    config of `code` (`path`, default: its copy among the test references)."""
    from datatrove.pipeline.filters import FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter

    config = fineweb2_raw(code, path)
    return [
        GopherRepetitionFilter(language=code, dup_para_frac=0, dup_line_char_frac=0, dup_para_char_frac=0,
                               dup_line_frac=config["dup_line_frac"], top_n_grams=config["top_n_grams"],
                               dup_n_grams=config["dup_n_grams"]),
        FineWebQualityFilter(language=code, short_line_thr=999, char_duplicates_ratio=0.1,
                             line_punct_thr=config["line_punct_thr"], new_line_ratio=config["new_line_ratio"]),
        GopherQualityFilter(language=code, max_avg_word_length=config["max_avg_word_length"],
                            min_avg_word_length=config["min_avg_word_length"], stop_words=config["stopwords"],
                            max_non_alpha_words_ratio=config["max_non_alpha_words_ratio"], min_stop_words=2),
    ]


def datatrove_reasons(filters: list, texts: list[str]) -> list[str | None]:
    """Our drop_reason for datatrove's first failing filter on each text (None: kept)."""
    from datatrove.data import Document

    reasons: list[str | None] = []
    for index, text in enumerate(texts):
        document, reason = Document(text=text, id=str(index)), None
        for step in filters:
            result = step.filter(document)
            if result is not True:
                reason = from_datatrove_reason(type(step).__name__, result[1] if isinstance(result, tuple) else "")
                break
        reasons.append(reason)
    return reasons


def run_blocks(blocks: list, texts: list[str], **columns) -> pa.Table:
    """Run blocks in order on a batch, as the runner does within a stage (dropped rows stay, marked)."""
    batch = pa.table({"text": pa.array(texts, pa.string()), **columns})
    for block in blocks:
        batch = block(batch)
    return batch


def drop_reasons(batch: pa.Table) -> list[str | None]:
    if "drop_reason" not in batch.column_names:
        return [None] * batch.num_rows
    return batch["drop_reason"].to_pylist()


# datatrove's (filter, reason) → our drop_reason, for comparing with FineWeb2's removed documents (their
# `filter_reason` metadata) and datatrove runs. n-gram reasons are `top_<n>_gram` / `duplicated_<n>_n_grams`.
DATATROVE_REASONS: dict[tuple[str, str], str] = {
    ("GopherRepetitionFilter", "empty"): "gopher_repetition.empty",
    ("GopherRepetitionFilter", "dup_para_frac"): "gopher_repetition.dup_para_share",
    ("GopherRepetitionFilter", "dup_para_char_frac"): "gopher_repetition.dup_para_char_share",
    ("GopherRepetitionFilter", "dup_line_frac"): "gopher_repetition.dup_line_share",
    ("GopherRepetitionFilter", "dup_line_char_frac"): "gopher_repetition.dup_line_char_share",
    ("FineWebQualityFilter", "empty"): "fineweb_quality.empty",
    ("FineWebQualityFilter", "line_punct_ratio"): "fineweb_quality.punct_line_share",
    ("FineWebQualityFilter", "short_line_ratio"): "fineweb_quality.short_line_share",
    ("FineWebQualityFilter", "char_dup_ratio"): "fineweb_quality.dup_line_char_share",
    ("FineWebQualityFilter", "list_ratio"): "fineweb_quality.newline_token_ratio",
    ("GopherQualityFilter", "gopher_short_doc"): "gopher_quality.word_count_low",
    ("GopherQualityFilter", "gopher_long_doc"): "gopher_quality.word_count_high",
    ("GopherQualityFilter", "gopher_below_avg_threshold"): "gopher_quality.mean_word_length_low",
    ("GopherQualityFilter", "gopher_above_avg_threshold"): "gopher_quality.mean_word_length_high",
    ("GopherQualityFilter", "gopher_too_many_hashes"): "gopher_quality.hash_token_ratio",
    ("GopherQualityFilter", "gopher_too_many_ellipsis"): "gopher_quality.ellipsis_token_ratio",
    ("GopherQualityFilter", "gopher_too_many_bullets"): "gopher_quality.bullet_line_share",
    ("GopherQualityFilter", "gopher_too_many_end_ellipsis"): "gopher_quality.ellipsis_line_share",
    ("GopherQualityFilter", "gopher_below_alpha_threshold"): "gopher_quality.alpha_token_share",
    ("GopherQualityFilter", "gopher_enough_stop_words"): "gopher_quality.stopword_count",
    ("C4QualityFilter", "lorem_ipsum"): "c4.lorem_ipsum",
    ("C4QualityFilter", "curly_bracket"): "c4.curly_bracket",
    ("C4QualityFilter", "too_few_sentences"): "c4.sentence_count",
}


def from_datatrove_reason(filter_class: str, reason: str) -> str:
    """Our drop_reason for a datatrove filter class name and its reason (`top_2_gram` → `…top_2gram_char_share`)."""
    if (filter_class, reason) in DATATROVE_REASONS:
        return DATATROVE_REASONS[(filter_class, reason)]
    match = re.fullmatch(r"top_(\d+)_gram|duplicated_(\d+)_n_grams", reason)
    if filter_class == "GopherRepetitionFilter" and match:
        kind, n = ("top", match[1]) if match[1] else ("dup", match[2])
        return rule_for(f"gopher_repetition.{kind}_{n}gram_char_share").reason
    raise KeyError(f"no counterpart for datatrove's {filter_class} reason {reason!r}")
