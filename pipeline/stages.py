"""Stages after stage 1, each a unit of work per bucket of one language.

Stage 3 reads one bucket's rows from every stage-1 file, applies the language's stage-3 blocks
(filters on stored statistics, formatters, scorers) and writes kept and removed rows. Stage 4 writes
the released shards `data/<dump>/<bucket>.parquet`.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from blocks import faults
from blocks.base import Block
from blocks.keys import DOC_KEY
from pipeline.stage1 import BUCKET, _concat, _run_block
from pipeline.storage import Output

# Internal columns kept under _work/ (with every `stat_*` filter statistic) but not released.
RELEASE_DROP = ("bucket", "doc_key", "lid_label", "drop_reason")


@dataclass(frozen=True)
class BucketUnit:
    """One bucket of one language, and the files it reads."""

    id: str
    language: str
    bucket: int
    inputs: tuple[str, ...]


@dataclass
class BucketResult:
    unit_id: str
    kept_file: str = ""
    removed_file: str = ""
    files: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    documents_read: int = 0
    seconds: float = 0.0


def read_bucket(output: Output, paths: tuple[str, ...], bucket: int) -> pa.Table:
    """Rows of `bucket` from stage files (row groups of other buckets are skipped by their statistics)."""
    tables = [output.read_parquet([p], filters=[(BUCKET, "=", bucket)]) for p in paths]
    return _concat(tables)


@dataclass
class Stage3Work:
    """Apply a language's stage-3 blocks to one bucket."""

    output: str
    blocks: list[Block]

    def run(self, unit: BucketUnit) -> BucketResult:
        started = time.monotonic()
        output = Output(self.output)
        rows = read_bucket(output, unit.inputs, unit.bucket)
        result = BucketResult(unit.id, documents_read=rows.num_rows)
        counts: Counter = Counter()
        removed = []
        for block in self.blocks:
            if not rows.num_rows:
                break
            rows, dropped = _run_block(block, rows, counts)
            if dropped.num_rows:
                removed.append(dropped)
        counts["kept"] = rows.num_rows
        result.counts = dict(counts)
        if rows.num_rows:
            result.kept_file = output.unique(output.language(unit.language, "_work", "stage3"), unit.id)
            output.write_parquet(result.kept_file, rows.sort_by([(DOC_KEY, "ascending")]))
        if removed:
            result.removed_file = output.unique(output.language(unit.language, "_work", "removed", "stage3"), unit.id)
            output.write_parquet(result.removed_file, _concat(removed))
        result.seconds = time.monotonic() - started
        return result


@dataclass
class FinalWork:
    """Write one bucket's kept documents as released shards, one per crawl: `data/<dump>/<bucket>.parquet`."""

    output: str

    def run(self, unit: BucketUnit) -> BucketResult:
        started = time.monotonic()
        output = Output(self.output)
        rows = output.read_parquet(list(unit.inputs)) if unit.inputs else pa.table({})
        result = BucketResult(unit.id, documents_read=rows.num_rows)
        if rows.num_rows:
            rows = rows.sort_by([(DOC_KEY, "ascending")])
            release = rows.drop_columns([c for c in rows.column_names if c in RELEASE_DROP or c.startswith("stat_")])
            for dump in sorted(set(rows["dump"].to_pylist())):
                part = release.filter(pc.equal(rows["dump"], dump))
                path = output.language(unit.language, "data", dump, f"{unit.bucket:05d}.parquet")
                output.write_parquet(path, part, row_group_rows=2_000)
                faults.kill_point("during_final_write")
                result.files[path] = part.num_rows
        result.seconds = time.monotonic() - started
        return result
