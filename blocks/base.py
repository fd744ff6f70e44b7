"""The block contract: a small step that takes a `pyarrow.Table` batch and returns one.

A block sees only live rows (the runner takes dropped rows out after every block) and returns the
same rows in the same order, with the columns it declares in `writes` added or replaced. A block
that removes documents does not delete them: it sets `drop_reason` to ``"<block name>.<rule>"``
(see `mark_dropped`) so every decision can be audited and counted. Scores and keep/drop decisions
are separate columns.

Blocks are cheap to pickle (plain dataclasses of settings): models are loaded lazily, once per
worker process, through cached loaders (`functools.cache`), never stored on the instance.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DROP_REASON = "drop_reason"


class Block(abc.ABC):
    """A step on a batch: reads the columns in `reads`, adds or replaces the columns in `writes`."""

    name: ClassVar[str]
    reads: ClassVar[tuple[str, ...]] = ()
    writes: ClassVar[tuple[str, ...]] = ()
    before_dedup: ClassVar[bool] = False
    """A stage-3 block whose removals are as if never crawled (a takedown list): applied before dedup, and the
    documents it drops take no part in clustering, so a listed page never stands for its unlisted copies."""

    def check(self) -> None:
        """Driver-side, before a run: make sure models and resources can be had; raise `UserError` if not."""

    def warm(self) -> None:
        """Worker-side, ahead of the first batch: load what `apply` loads on first use (models, subprocesses), so
        a worker gets ready while the driver still plans (`nodes.warm_workers`). Default: `check`."""
        self.check()

    def provenance(self) -> dict[str, str]:
        """What this block depends on outside its settings (model sha256, list versions), for manifests."""
        return {}

    def fingerprint(self) -> object:
        """What a stage's fingerprint covers of this block: the settings that change the columns it writes
        (default: all of them). A stage-1 block that only stores statistics leaves out the thresholds
        stage 3 compares them with, so editing a threshold keeps stage 1."""
        return repr(self)

    @abc.abstractmethod
    def apply(self, batch: pa.Table) -> pa.Table:
        """Return `batch` with this block's columns added (same rows, same order)."""

    def __call__(self, batch: pa.Table) -> pa.Table:
        missing = [c for c in self.reads if c not in batch.column_names]
        if missing:
            raise KeyError(f"block {self.name!r} needs column(s) {missing}; it got {batch.column_names}")
        return self.apply(batch)


class Scorer(Block):
    """A block that measures documents (a model, a list, a formula), then may drop some by a threshold: the two
    halves apart, so stage 3 keeps the scores (by doc_key and `score_key`) while thresholds change."""

    score_columns: ClassVar[tuple[str, ...]]

    @abc.abstractmethod
    def score(self, batch: pa.Table) -> pa.Table:
        """`batch` with the `score_columns` added."""

    def decide(self, batch: pa.Table) -> pa.Table:
        """Mark the documents the threshold drops, from the score columns (none by default)."""
        return batch

    def without_threshold(self) -> Block:
        """This block with its threshold off: everything its scores depend on besides its models."""
        return self

    def score_key(self) -> str:
        """A digest of what the scores depend on: the settings without the threshold, and the models' hashes."""
        import hashlib

        text = repr((repr(self.without_threshold()), sorted(self.provenance().items())))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def apply(self, batch: pa.Table) -> pa.Table:
        return self.decide(self.score(batch))


def set_column(batch: pa.Table, name: str, values: pa.Array | pa.ChunkedArray | list) -> pa.Table:
    """Add column `name`, replacing an existing one of the same name."""
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = pa.array(values)
    index = batch.schema.get_field_index(name)
    if index >= 0:
        return batch.set_column(index, name, values)
    return batch.append_column(name, values)


def mark_dropped(batch: pa.Table, mask: np.ndarray | pa.Array, reason: str) -> pa.Table:
    """Set `drop_reason` to `reason` where `mask` is true and no earlier reason is set."""
    mask = pa.array(np.asarray(mask, dtype=bool)) if not isinstance(mask, pa.Array) else mask
    if DROP_REASON in batch.column_names:
        current = batch[DROP_REASON]
    else:
        current = pa.nulls(batch.num_rows, pa.string())
    updated = pc.if_else(pc.and_(mask, pc.is_null(current)), pa.scalar(reason, pa.string()), current)
    return set_column(batch, DROP_REASON, updated)


def split_dropped(batch: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Split a batch into (live rows, dropped rows) by `drop_reason`."""
    if DROP_REASON not in batch.column_names:
        return batch, batch.slice(0, 0)
    dropped = pc.is_valid(batch[DROP_REASON])
    return batch.filter(pc.invert(dropped)), batch.filter(dropped)
