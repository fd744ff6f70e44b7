"""Bounded-memory Parquet I/O of the bucket stages: read a key range of sorted files in batches, write batches.

A bucket stage reads `Part`s (`parts.py`: a language's row groups of a file, or a whole file), each sorted by
`doc_key` in row groups of about `stage1.ROW_GROUP_BYTES`, so a bucket (a key range,
`blocks.keys.bucket_bounds`) reads from each part only the row groups whose `doc_key` statistics overlap its
range, one row group at a time. Each file's footer is read once (`read_footers`) and handed to every later
open of the file. `BatchWriter` appends batches to one Parquet file without holding them: batches
of one schema stream into a spool file; a batch with other columns (a block's column all-null in one batch, a
column only removed rows of a later block carry) starts another spool file, and `close` rewrites the spools
under their unified schema, a batch at a time. The finished file appears at once (a rename on a local disk, one
upload on an object store), so a reader never sees half of it.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.blocks import faults
from curate.blocks.keys import DOC_KEY, bucket_bounds, buckets_of
from curate.pipeline.execution.parts import Part
from curate.pipeline.execution.storage import Output



def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with exactly `schema`'s columns, in its order and types (missing columns as nulls)."""
    columns = []
    for column in schema:
        if column.name in table.column_names:
            values = table[column.name]
            columns.append(values if values.type == column.type else values.cast(column.type))
        else:
            columns.append(pa.nulls(table.num_rows, column.type))
    return pa.Table.from_arrays(columns, schema=schema)


def unified_schema(schemas: list[pa.Schema]) -> pa.Schema:
    """One schema for tables of several files or batches (columns in first-seen order, types promoted)."""
    return pa.unify_schemas([s.remove_metadata() for s in schemas], promote_options="permissive")


def read_footer(output: Output, path: str) -> pq.FileMetaData:
    """A Parquet file's footer, read with two exact reads (its length, then itself: Arrow's own open reads a 64 kB
    tail, mostly row-group bytes of a small file); `part_groups` hands it to every later open of the file."""
    with output.fs.open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(size - 8, 0))
        tail = handle.read(8)
        length = int.from_bytes(tail[:4], "little")
        if len(tail) < 8 or tail[4:] != b"PAR1" or length + 12 > size:
            handle.seek(0)
            return pq.read_metadata(handle)  # not a Parquet file: Arrow says why
        handle.seek(size - 8 - length)
        footer = handle.read(length)
    return pq.read_metadata(pa.BufferReader(b"PAR1" + footer + tail))


def read_footers(output: Output, parts: list[Part]) -> dict[str, pq.FileMetaData]:
    """The footer of each file `parts` name, each read once."""
    footers: dict[str, pq.FileMetaData] = {}
    for part in parts:
        if part.path not in footers:
            footers[part.path] = read_footer(output, part.path)
    return footers


def part_schema(part: Part, footer: pq.FileMetaData) -> pa.Schema:
    """The Arrow schema of `part`'s own columns."""
    schema = footer.schema.to_arrow_schema().remove_metadata()
    if part.columns is None:
        return schema
    return pa.schema([schema.field(c) for c in part.columns if c in schema.names])


def parts_schema(parts: list[Part], footers: dict[str, pq.FileMetaData]) -> pa.Schema | None:
    """The unified schema of `parts` (from their footers); None without parts."""
    return unified_schema([part_schema(p, footers[p.path]) for p in parts]) if parts else None


def file_schemas(output: Output, paths: tuple[str, ...] | list[str]) -> pa.Schema | None:
    """The unified schema of Parquet files (their footers only); None without files."""
    parts = [Part.of(p) for p in paths]
    return parts_schema(parts, read_footers(output, parts))


def part_groups(output: Output, part: Part, footer: pq.FileMetaData, groups: list[int] | None = None,
                columns: list[str] | None = None) -> Iterator[pa.Table]:
    """The row groups `groups` of `part` (default: all of the part's), one at a time, with its own columns (only
    `columns` of them, when given); the footer is not read again."""
    own = footer.schema.to_arrow_schema().names if part.columns is None else part.columns
    names = None if columns is None and part.columns is None else [
        c for c in (own if columns is None else columns) if c in own]
    with output.fs.open(part.path, "rb") as handle:
        parquet = pq.ParquetFile(handle, metadata=footer)
        for table in row_groups(parquet, list(part.groups(footer)) if groups is None else groups, names):
            yield table if names is None else table.select(names)


def read_parts(output: Output, parts: list[Part | str | dict], columns: list[str] | None = None) -> pa.Table:
    """The rows of `parts` (or paths, or parts as a manifest records them) as one table: small reads only."""
    parts = [Part.of(p) for p in parts]
    footers = read_footers(output, parts)
    tables = [t for p in parts for t in part_groups(output, p, footers[p.path], columns=columns)]
    return pa.concat_tables(tables, promote_options="default") if tables else pa.table({})


def _overlapping_groups(metadata: pq.FileMetaData, lo: int, hi: int) -> list[int]:
    """Row groups whose doc_key statistics overlap [lo, hi) (a group without statistics is read)."""
    leaves = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
    index = leaves.index(DOC_KEY) if DOC_KEY in leaves else -1  # a leaf's index, not the field's (nested columns)
    groups = []
    for group in range(metadata.num_row_groups):
        statistics = metadata.row_group(group).column(index).statistics if index >= 0 else None
        if statistics is None or not statistics.has_min_max:
            groups.append(group)
        elif int(statistics.max) >= lo and int(statistics.min) < hi:
            groups.append(group)
    return groups


def row_groups(parquet: pq.ParquetFile, groups: list[int] | None = None,
               columns: list[str] | None = None) -> Iterator[pa.Table]:
    """The row groups one at a time (a whole group is decoded at once: `iter_batches` holds far more, measured)."""
    for group in range(parquet.num_row_groups) if groups is None else groups:
        yield parquet.read_row_group(group, columns=columns, use_threads=False)


def bucket_batches(output: Output, inputs: tuple[Part | str, ...], bucket: int, num_buckets: int, batch_bytes: int,
                   columns: list[str] | None = None) -> Iterator[pa.Table]:
    """The rows of `bucket` from `inputs` (parts or paths, in order, each one's rows in its order), as tables of
    about `batch_bytes` (Arrow bytes) under their unified schema: memory holds one batch and one row group. Each
    file's footer is read once."""
    parts = [Part.of(p) for p in inputs]
    footers = read_footers(output, parts)
    schema = parts_schema(parts, footers)
    if schema is None:
        return
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns if c in schema.names])
    lo, hi = bucket_bounds(bucket, num_buckets)
    pending: list[pa.Table] = []
    size = 0
    for part in parts:
        footer = footers[part.path]
        owned = part.groups(footer)
        groups = [g for g in _overlapping_groups(footer, lo, hi) if g in owned]
        if not groups:
            continue
        for batch in part_groups(output, part, footer, groups, columns):
            keys = batch[DOC_KEY].to_numpy()
            inside = buckets_of(keys, num_buckets) == bucket
            if not inside.any():
                continue
            rows = batch.filter(pa.array(inside))
            pending.append(conform(rows, schema))
            size += rows.nbytes
            if size >= batch_bytes:
                size = 0
                yield _drain(pending)
    if pending:
        yield _drain(pending)


def _drain(tables: list[pa.Table]) -> pa.Table:
    """The tables as one, emptying the list (so only the caller holds the rows)."""
    table = pa.concat_tables(tables)
    tables.clear()
    return table


class BatchWriter:
    """Appends tables to one Parquet file at `path` (zstd), holding none of them; `close` publishes the file.

    `row_group_rows` cuts row groups at fixed row counts across `write` calls (rows are buffered up to one row
    group), so the bytes do not depend on how the rows were batched. `statistics`: the
    columns whose min/max the footer keeps (default all; a file of many row groups keeps its footer small with
    only the keys'). Returns nothing until `close`, which
    returns the bytes written (0, and no file, when no row was written)."""

    def __init__(self, output: Output, path: str, row_group_rows: int = 10_000, statistics: list[str] | None = None):
        self.output, self.path, self.row_group_rows = output, path, row_group_rows
        self.statistics = True if statistics is None else statistics  # columns with min/max in the footer
        # next to the file on a local output (one disk: a full one is the output's; a killed run's spool is a
        # `.tmp-` the next run removes), else in the local temporary folder
        folder = path.rsplit("/", 1)[0] if output.is_local else None
        if folder:
            os.makedirs(folder, exist_ok=True)
        self.directory = tempfile.mkdtemp(prefix=".tmp-spool-", dir=folder)
        self.spools: list[tuple[str, pa.Schema]] = []
        self._writer: pq.ParquetWriter | None = None
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        table = table.replace_schema_metadata(None)
        if self._buffer and table.schema != self._buffer[0].schema:
            self._flush(everything=True)
        self._buffer.append(table)
        self._buffered += table.num_rows
        self.rows += table.num_rows
        if self._buffered >= self.row_group_rows:
            self._flush(everything=False)

    def _flush(self, everything: bool) -> None:
        if not self._buffer:
            return
        table, self._buffer = pa.concat_tables(self._buffer), []
        cut = table.num_rows if everything else table.num_rows - table.num_rows % self.row_group_rows
        for start in range(0, cut, self.row_group_rows):  # contiguous columns: pages do not depend on batching
            self._spool(table.slice(start, min(self.row_group_rows, cut - start)).combine_chunks())
        rest = table.slice(cut)
        if rest.num_rows:  # a copy: a slice would keep the whole batch alive
            self._buffer = [rest.take(np.arange(rest.num_rows))]
        self._buffered = rest.num_rows

    def _spool(self, table: pa.Table) -> None:
        try:
            self._spool_table(table)
        except OSError as error:
            raise self._output_error(error) from None

    def _output_error(self, error: OSError) -> OSError:
        """A full or read-only disk named by the output file, not the spool file the write failed on."""
        if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            return OSError(error.errno, error.strerror, self.path)
        return error

    def _spool_table(self, table: pa.Table) -> None:
        if self._writer is None or self.spools[-1][1] != table.schema:
            if self._writer is not None:
                self._writer.close()
            path = os.path.join(self.directory, f"{len(self.spools):05d}.parquet")
            faults.disk_full_point(path)
            self._writer = pq.ParquetWriter(path, table.schema, compression="zstd", write_statistics=self.statistics)
            self.spools.append((path, table.schema))
        self._writer.write_table(table, row_group_size=self.row_group_rows)

    def close(self) -> int:
        """Publish the file (atomically); returns its size in bytes."""
        try:
            self._flush(everything=True)
            if self._writer is not None:
                self._writer.close()
            if not self.spools:
                return 0
            schema = unified_schema([s for _, s in self.spools])
            if len(self.spools) == 1 and self.spools[0][1] == schema:
                local = self.spools[0][0]
            else:  # batches of several schemas: one file under their union, a row group at a time
                local = os.path.join(self.directory, "unified.parquet")
                with pq.ParquetWriter(local, schema, compression="zstd", write_statistics=self.statistics) as writer:
                    for spool, _ in self.spools:
                        parquet = pq.ParquetFile(spool)
                        for group in range(parquet.num_row_groups):
                            writer.write_table(conform(parquet.read_row_group(group), schema),
                                               row_group_size=self.row_group_rows)
            size = os.path.getsize(local)
            self._publish(local)
            return size
        except OSError as error:
            raise self._output_error(error) from None
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _publish(self, local: str) -> None:
        output = self.output
        output.fs.makedirs(self.path.rsplit("/", 1)[0], exist_ok=True)
        if output.is_local:
            temporary = f"{self.path}.tmp-{uuid.uuid4().hex[:8]}"
            try:
                shutil.move(local, temporary)
                faults.disk_full_point(self.path)  # as if the move (a copy across disks) ran out of space
                os.replace(temporary, self.path)
            except BaseException:
                if os.path.exists(temporary):
                    os.remove(temporary)
                raise
        else:
            faults.disk_full_point(self.path)
            output.fs.put_file(local, self.path)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        shutil.rmtree(self.directory, ignore_errors=True)
