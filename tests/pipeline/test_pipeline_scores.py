"""Stage 3 keeps scores by doc_key and score key: a scorer's model runs once per document and model revision,
whatever the thresholds."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa

from curate.blocks.base import Scorer, mark_dropped, set_column
from curate.pipeline.execution.stages import BucketUnit, ScoreStore
from curate.pipeline.execution.storage import Output

SCORED: list[int] = []


@dataclass
class Length(Scorer):
    """A stand-in model: the text's length, times `scale` (the 'model revision')."""

    scale: int = 1
    max_length: int | None = None
    name = "length"
    reads = ("text",)
    score_columns = ("length",)

    def provenance(self) -> dict[str, str]:
        return {"length_model": str(self.scale)}

    def score(self, batch: pa.Table) -> pa.Table:
        SCORED.append(batch.num_rows)
        lengths = np.array([len(t) * self.scale for t in batch["text"].to_pylist()], np.int64)
        return set_column(batch, "length", pa.array(lengths))

    def decide(self, batch: pa.Table) -> pa.Table:
        if self.max_length is None:
            return batch
        return mark_dropped(batch, batch["length"].to_numpy() > self.max_length, "length.high")

    def without_threshold(self) -> Length:
        return replace(self, max_length=None)


def _rows(keys: list[int]) -> pa.Table:
    return pa.table({"doc_key": pa.array(keys, pa.uint64()), "text": ["x" * (k % 7 + 1) for k in keys]})


def cached_scores(output: Output, unit: BucketUnit, block: Scorer, rows: pa.Table) -> tuple[pa.Table, int]:
    """What a stage-3 bucket does with a scorer: open its store, look the rows up (scoring the others), save."""
    store = ScoreStore.open(output, unit, block)
    rows, scored = store.lookup(block, rows)
    store.save()
    return rows, scored


def test_scores_are_reused_across_thresholds_and_redone_for_another_model(tmp_path):
    output, unit = Output(str(tmp_path)), BucketUnit("fin_Latn-00000", "fin_Latn", 0, ())
    SCORED.clear()
    first, scored = cached_scores(output, unit, Length(max_length=3), _rows([5, 1, 9, 3]))
    assert scored == 4 and first["length"].to_pylist() == [6, 2, 3, 4]
    # another threshold, rows in another order and two new documents: only the new ones are scored
    again, scored = cached_scores(output, unit, Length(max_length=5), _rows([3, 12, 9, 1, 20]))
    assert scored == 2 and SCORED == [4, 2]
    assert again["doc_key"].to_pylist() == [3, 12, 9, 1, 20]
    assert again["length"].to_pylist() == [4, 6, 3, 2, 7]
    assert Length(max_length=5).decide(again)["drop_reason"].to_pylist() == [None, "length.high", None, None,
                                                                                "length.high"]
    # a new model revision scores everything again
    revised, scored = cached_scores(output, unit, Length(scale=2), _rows([3, 12]))
    assert scored == 2 and revised["length"].to_pylist() == [8, 12]
