"""Heuristic filtering of fin_Latn: curate's stage-1 statistics + stage-3 decisions vs datatrove's three filters.

    .venv/bin/python benchmarks/filters.py [--documents 600] [--repeat 2]

Input: Finnish documents built from ../shared/data/text/fi (paragraphs of consecutive sentences) plus spam
built from them (the same generator as the tests). Both sides run on one core in this process:

- datatrove: GopherRepetitionFilter → FineWebQualityFilter → GopherQualityFilter with FineWeb2's arguments,
  chained as a datatrove pipeline (its `split_into_words` cache lets the three share one tokenization).
- curate: WordTokens + FilterStatistics (stage 1) then the three threshold filters (stage 3), on one Arrow batch;
  once with the config's datatrove tokenizer (spaCy) and once with `word_tokenizer: unicode_words`.

Prints docs/s per core (CPU time of this process, so that other load on the machine does not count), the ratio
against datatrove, and the keep/drop agreement with datatrove on the same documents.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "filters")]

import pyarrow as pa  # noqa: E402
from filters_helpers import (  # noqa: E402
    datatrove_fineweb2_filters,
    datatrove_reasons,
    finnish_documents,
    make_spam,
)

from curate.blocks.quality import stage1_blocks, stage3_filter_blocks  # noqa: E402
from curate.language_configs.schema import load_language_config  # noqa: E402


def run_datatrove(texts: list[str]) -> list[bool]:
    from datatrove.data import Document

    filters = datatrove_fineweb2_filters("fin_Latn")
    stream = (Document(text=t, id=str(i)) for i, t in enumerate(texts))
    for step in filters:
        stream = step.run(stream)
    kept = {doc.id for doc in stream}
    return [str(i) in kept for i in range(len(texts))]


def run_curate(config, texts: list[str]) -> tuple[list[bool], float, float]:
    batch = pa.table({"text": pa.array(texts, pa.string())})
    start = time.process_time()
    for block in stage1_blocks(config):
        batch = block(batch)
    batch = batch.drop_columns(["words"])  # transient: stage 1 stores only the statistics
    middle = time.process_time()
    for block in stage3_filter_blocks(config):
        batch = block(batch)
    end = time.process_time()
    reasons = batch["drop_reason"].to_pylist() if "drop_reason" in batch.column_names else [None] * len(texts)
    return [r is None for r in reasons], middle - start, end - middle


def best_curate(repeat: int, config, texts: list[str]) -> tuple[list[bool], float, float]:
    """The decisions, and the fastest stage-1 and stage-3 times over `repeat` runs."""
    runs = [run_curate(config, texts) for _ in range(repeat)]
    return runs[0][0], min(r[1] for r in runs), min(r[2] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=600, help="real Finnish documents (spam is added)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per side; the fastest counts")
    args = parser.parse_args()

    real = finnish_documents(args.documents)
    texts = real + make_spam(real)
    n, words = len(texts), sum(len(t.split()) for t in texts)
    config = load_language_config("fin_Latn")
    fast = dataclasses.replace(config, word_tokenizer="unicode_words")
    # warm up: load spaCy once, outside the timings
    datatrove_reasons(datatrove_fineweb2_filters("fin_Latn"), texts[:2])
    run_curate(config, texts[:2])

    dt_time, dt_kept = float("inf"), []
    for _ in range(args.repeat):
        start = time.process_time()
        dt_kept = run_datatrove(texts)
        dt_time = min(dt_time, time.process_time() - start)
    ours_kept, ours_stage1, ours_stage3 = best_curate(args.repeat, config, texts)
    fast_kept, fast_stage1, fast_stage3 = best_curate(args.repeat, fast, texts)

    def agreement(kept: list[bool]) -> str:
        same = sum(a == b for a, b in zip(kept, dt_kept))
        return f"{same}/{n} ({same / n:.1%})"

    def row(label: str, seconds: float, kept: list[bool] | None = None) -> None:
        print(f"{label:40s}{n / seconds:9.0f}{dt_time / seconds:8.2f}  {agreement(kept) if kept else ''}")

    print(f"fin_Latn, {n} documents ({len(real)} real + {n - len(real)} spam, {words / n:.0f} words each), one core")
    print(f"{'':40s}{'docs/s':>9s}{'ratio':>8s}  keep/drop agreement with datatrove")
    row("datatrove 3 filters (spaCy fi)", dt_time)
    row("curate stage 1 + 3 (spaCy fi)", ours_stage1 + ours_stage3, ours_kept)
    row("  stage 1: tokens + statistics", ours_stage1)
    row("  stage 3: thresholds on statistics", ours_stage3)
    row("curate stage 1 + 3 (unicode_words)", fast_stage1 + fast_stage3, fast_kept)
    row("  stage 1: tokens + statistics", fast_stage1)
    print(f"kept: datatrove {sum(dt_kept)}/{n}, curate (spaCy) {sum(ours_kept)}, curate (unicode_words) "
          f"{sum(fast_kept)}")


if __name__ == "__main__":
    main()
