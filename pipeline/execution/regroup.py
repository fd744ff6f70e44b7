"""Regroup: a language's stage-1 rows into files whose row groups follow its buckets, so a bucket reads its own bytes.

Stage-1 parts are sorted by `doc_key` and a bucket is a `doc_key` range of its language. Read straight from the
parts, every bucket would open every part's footer and read, from each, up to a row group beyond its range at
each end: with many small parts and many buckets, most of what a bucket reads is other buckets' rows. So a
language of more than one bucket is regrouped first: a task per run of consecutive parts (`plan_groups`: at most
`REGROUP_PARTS` parts and `REGROUP_BYTES` Parquet bytes) reads each of its parts once (its footer once, each of
its row groups once) and writes one file, bucket after bucket, each bucket's rows in row groups of their own (in
part order, a part's rows in key order: the order stage 3 read them in before). Its result records, per bucket,
that bucket's `Part` of the file. A bucket then reads, from each regroup file, exactly its own row groups: each
footer once, no row of another bucket. A task holds at most one decoded row group per part (the rows of a group
that belong to later buckets). A language of one bucket reads its stage-1 parts whole, with no copy.

A task is a `BucketUnit` of the "regroup" stage (`bucket`: the task's number), committed by the same manifests as
every stage, so a killed run resumes it and `curate verify` checks its file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.blocks.keys import DOC_KEY, bucket_bounds
from curate.pipeline.execution.parts import Part, runs_of_groups
from curate.pipeline.execution.stage1 import ROW_GROUP_BYTES
from curate.pipeline.execution.stages import BucketUnit
from curate.pipeline.execution.storage import Output
from curate.pipeline.execution.streams import (BatchWriter, conform, part_groups, parts_schema, read_footer,
                                               read_footers)

REGROUP_PARTS = 64  # parts a task reads: its memory holds at most one decoded row group of each
REGROUP_BYTES = 4 << 30  # stage-1 Parquet bytes a task copies at most (the copy's parallelism)


@dataclass
class RegroupResult:
    unit_id: str
    file: str = ""
    buckets: dict[str, dict] = field(default_factory=dict)  # bucket → its `Part` of `file` (JSON)
    documents_read: int = 0
    seconds: float = 0.0


def plan_groups(parts: list[Part], max_parts: int = REGROUP_PARTS, max_bytes: int = REGROUP_BYTES) -> list[tuple]:
    """`parts` (in order) cut into runs of consecutive parts, each of at most `max_parts` parts and `max_bytes`
    bytes (a larger part alone)."""
    groups: list[list[Part]] = []
    size = 0
    for part in parts:
        if not groups or len(groups[-1]) >= max_parts or size + part.bytes > max_bytes:
            groups.append([])
            size = 0
        groups[-1].append(part)
        size += part.bytes
    return [tuple(group) for group in groups]


def bucket_inputs(regroup: dict[int, dict], bucket: int) -> tuple[Part, ...]:
    """The parts stage 3 reads for `bucket`: its row groups of each regroup task's file, in task order."""
    return tuple(Part.of(regroup[task]["result"]["buckets"][str(bucket)]) for task in sorted(regroup)
                 if str(bucket) in regroup[task]["result"]["buckets"])


@dataclass
class _Cursor:
    """Where a task is in one part: the next row group to read and the rows of the last one not yet written."""

    output: Output
    part: Part
    footer: pq.FileMetaData
    schema: pa.Schema
    groups: list[int] = field(default_factory=list)
    rest: pa.Table | None = None

    def __post_init__(self) -> None:
        self.groups = list(self.part.groups(self.footer))
        leaves = [self.footer.schema.column(i).path for i in range(self.footer.num_columns)]
        self.key_leaf = leaves.index(DOC_KEY)

    def _first_key(self, group: int) -> int | None:
        statistics = self.footer.row_group(group).column(self.key_leaf).statistics
        return int(statistics.min) if statistics is not None and statistics.has_min_max else None

    def take(self, hi: int) -> list[pa.Table]:
        """The part's next rows with keys below `hi` (its rows are sorted by key)."""
        taken = []
        while True:
            if self.rest is None or not self.rest.num_rows:
                if not self.groups:
                    break
                first = self._first_key(self.groups[0])
                if first is not None and first >= hi:
                    break
                group = self.groups.pop(0)
                self.rest = conform(next(part_groups(self.output, self.part, self.footer, [group])), self.schema)
            keys = self.rest[DOC_KEY].to_numpy()
            cut = len(keys) if hi >= 1 << 64 else int(np.searchsorted(keys, np.uint64(hi)))
            taken.append(self.rest.slice(0, cut))
            self.rest = self.rest.slice(cut)
            if self.rest.num_rows:
                break  # the rest of this row group belongs to later buckets
        return [t for t in taken if t.num_rows]


@dataclass
class RegroupWork:
    """Regroup a run of one language's stage-1 parts (`unit.inputs`) into one file by bucket (of `num_buckets`)."""

    output: str
    num_buckets: int

    def run(self, unit: BucketUnit) -> RegroupResult:
        started = time.monotonic()
        output = Output(self.output)
        result = RegroupResult(unit.id)
        parts = [Part.of(p) for p in unit.inputs]
        footers = read_footers(output, parts)
        schema = parts_schema(parts, footers)
        cursors = [_Cursor(output, part, footers[part.path], schema) for part in parts]
        rows = sum(footers[p.path].row_group(g).num_rows for p in parts for g in p.groups(footers[p.path]))
        arrow = sum(footers[p.path].row_group(g).total_byte_size for p in parts for g in p.groups(footers[p.path]))
        path = output.unique(output.language(unit.language, "_work", "regroup"), unit.id)
        writer = BatchWriter(output, path, max(64, ROW_GROUP_BYTES * rows // max(arrow, 1)), [DOC_KEY])
        counts: dict[int, int] = {}
        try:
            for bucket in range(self.num_buckets):
                _, hi = bucket_bounds(bucket, self.num_buckets)
                for cursor in cursors:
                    for table in cursor.take(hi):
                        writer.write(table)
                        counts[bucket] = counts.get(bucket, 0) + table.num_rows
                writer.cut()  # the bucket's last row group ends here
            size = writer.close()
        except BaseException:
            writer.abort()
            raise
        result.documents_read = sum(counts.values())
        if size:
            result.file = path
            footer = read_footer(output, path)
            result.buckets = runs_of_groups(path, read_footer(output, path),  # each bucket: whole row groups
                                            [(str(b), n, tuple(schema.names)) for b, n in sorted(counts.items())])
        result.seconds = time.monotonic() - started
        return result
