"""Regroup: a language's stage-1 rows into one file per bucket and task, so a bucket reads only its own bytes.

Stage-1 parts are sorted by `doc_key` and a bucket is a `doc_key` range of its language. Read straight from the
parts, every bucket would open every part's footer and read, from each, up to a row group beyond its range at
each end: with many small parts and many buckets, most of what a bucket reads is other buckets' rows. So a
language of more than one bucket is regrouped first: a task per run of consecutive parts (`plan_groups`: as many
as `REGROUP_MEMORY` holds one row group of each, at most `REGROUP_BYTES` Parquet bytes) reads each of its parts
once (its footer once, each of its row groups once) and writes, bucket after bucket, one file of that bucket's
rows (in part order, a part's rows in key order: the order stage 3 read them in before). A bucket then reads one
file per task: no row of another bucket, each footer once, and footers of one row group's worth of metadata
(a file of many row groups would make every bucket read the metadata of all of them). A task holds at most one
decoded row group per part (the rows of a group that belong to later buckets) and writes one file at a time. A
language of one bucket reads its stage-1 parts whole, with no copy.

A task is a `BucketUnit` of the "regroup" stage (`bucket`: the task's number), committed by the same manifests as
every stage, so a killed run resumes it and `curate verify` checks its files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.blocks.keys import DOC_KEY, bucket_bounds
from curate.pipeline.execution.parts import Part
from curate.pipeline.execution.stage1 import ROW_GROUP_BYTES
from curate.pipeline.execution.stages import BucketUnit
from curate.pipeline.execution.storage import Output
from curate.pipeline.execution.streams import BatchWriter, conform, part_groups, parts_schema, read_footers

REGROUP_MEMORY = 512 << 20  # decoded row groups a task holds at most (one of each part: their `largest`)
REGROUP_BYTES = 16 << 30  # stage-1 Parquet bytes a task copies at most (the copy's parallelism)


@dataclass
class RegroupResult:
    unit_id: str
    files: list[str] = field(default_factory=list)
    buckets: dict[str, dict] = field(default_factory=dict)  # bucket → its file, as a `Part` (JSON)
    documents_read: int = 0
    seconds: float = 0.0


def plan_groups(parts: list[Part], memory: int = REGROUP_MEMORY, max_bytes: int = REGROUP_BYTES) -> list[tuple]:
    """`parts` (in order) cut into runs of consecutive parts, each holding at most `memory` bytes of row groups,
    one of each part (its `largest`; `ROW_GROUP_BYTES` when not known), and `max_bytes` Parquet bytes (a larger
    part alone)."""
    groups: list[list[Part]] = []
    size = held = 0
    for part in parts:
        group = part.largest or ROW_GROUP_BYTES
        if not groups or held + group > memory or size + part.bytes > max_bytes:
            groups.append([])
            size = held = 0
        groups[-1].append(part)
        size += part.bytes
        held += group
    return [tuple(group) for group in groups]


def bucket_inputs(regroup: dict[int, dict], bucket: int) -> tuple[Part, ...]:
    """The parts stage 3 reads for `bucket`: its file of each regroup task, in task order."""
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
    """Regroup a run of one language's stage-1 parts (`unit.inputs`) into a file per bucket (of `num_buckets`)."""

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
        rows_per_group = max(64, ROW_GROUP_BYTES * rows // max(arrow, 1))
        folder = output.language(unit.language, "_work", "regroup")
        for bucket in range(self.num_buckets):
            _, hi = bucket_bounds(bucket, self.num_buckets)
            path = output.unique(folder, f"{unit.id}-{bucket:05d}")
            writer = BatchWriter(output, path, rows_per_group, [DOC_KEY])
            try:
                for cursor in cursors:
                    for table in cursor.take(hi):
                        writer.write(table)
                count = writer.rows
                size = writer.close()
            except BaseException:
                writer.abort()
                raise
            if size:
                result.files.append(path)
                result.buckets[str(bucket)] = Part(path, 0, None, count, size, tuple(schema.names)).to_json()
            result.documents_read += count
        result.seconds = time.monotonic() - started
        return result
