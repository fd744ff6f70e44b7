"""The `decontamination` section: evaluation sets whose items must not reach the language's shards."""

from __future__ import annotations

from dataclasses import dataclass

from curate.language_configs.validate import ConfigError


@dataclass(frozen=True)
class DecontaminationConfig:
    """Documents sharing a word n-gram (or, for items under `ngram_size` words, a whole paragraph) with an item of
    one of `sets` are removed in stage 3 as `decontamination.<set>` (docs/decontamination.md).

    sets: evaluation set specs (`blocks.evaluation_sets`: a text file, `PATH.jsonl#COLUMN`, `PATH.parquet#COLUMN`,
        `hf:ORG/DATASET:CONFIG:SPLIT#COLUMN`); `curate run --decontaminate` adds more for one run.
    ngram_size: words per n-gram (13: GPT-3's choice, datatrove's family).
    max_documents: an n-gram or paragraph found in more than this many documents of the language is common text,
        reported and ignored (K).
    min_item_words: items with fewer words are not matched at all (a one-word answer would match every page
        with that word as a paragraph).
    """

    sets: tuple[str, ...] = ()
    ngram_size: int = 13
    max_documents: int = 1000
    min_item_words: int = 3

    def __post_init__(self) -> None:
        for name in ("ngram_size", "max_documents", "min_item_words"):
            if getattr(self, name) < 1:
                raise ConfigError(f"decontamination.{name}: at least 1, got {getattr(self, name)}")
