"""Files of the dedup stage on any fsspec filesystem (a local path, `s3://`, `hf://`, `memory://`).

Each task writes its data files first and its small JSON manifest last; the manifest is the commit, through the
one protocol every stage uses (`files.py` `FileRoot.commit`): it lists the files the task wrote, relative to the
stage's directory, with their sizes and checksums. A rerun trusts a manifest only while those files are intact,
so a task killed half way, or whose file was damaged since, is simply redone.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from curate.files import FileRoot

log = logging.getLogger("curate")
_WRITTEN: ContextVar[list[str] | None] = ContextVar("dedup_written", default=None)  # the running task's files


@dataclass(frozen=True)
class Store(FileRoot):
    """The dedup stage's files: raw bytes, atomic JSON manifests, Parquet."""

    def exists(self, path: str) -> bool:
        return self.fs.exists(path)

    def makedirs(self, path: str) -> None:
        self.fs.makedirs(path, exist_ok=True)

    def write_bytes(self, path: str, data: bytes | memoryview) -> None:
        parent = path.rsplit("/", 1)[0]
        self.makedirs(parent)
        with self.fs.open(path, "wb") as handle:
            handle.write(data)
        written = _WRITTEN.get()
        if written is not None:
            written.append(path)

    def read_bytes(self, path: str, start: int | None = None, end: int | None = None) -> bytes:
        if start is not None and end is not None and end <= start:
            return b""
        return self.fs.cat_file(path, start=start, end=end)

    def write_parquet(self, path: str, table: pa.Table) -> None:
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        self.write_bytes(path, sink.getbuffer())

    def read_parquet(self, path: str, columns: list[str] | None = None) -> pa.Table:
        with self.fs.open(path, "rb") as handle:
            return pq.read_table(handle, columns=columns)

    def remove(self, path: str) -> None:
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)


def committed(store: Store, manifest: str, work: Callable[[], dict]) -> dict:
    """Run `work` unless `manifest` is committed with its files intact; commit its result and the files it wrote
    (the manifest lists them with their sizes and checksums).

    Returns the result, with `"skipped": True` when it was read back from an earlier attempt.
    """
    result = store.read_json(manifest)
    if result is not None and "outputs" in result:
        problems = store.damaged(result)
        if not problems:
            result.pop("outputs")
            result["skipped"] = True
            return result
        log.warning("dedup task %s: %s; computing it again", store.relative(manifest), "; ".join(problems))
    with _recording() as written:
        result = work()
    store.commit(manifest, result, written)
    result["skipped"] = False
    return result


@contextmanager
def _recording() -> Iterator[list[str]]:
    """The files `Store.write_bytes` writes in this context (one task's)."""
    written: list[str] = []
    token = _WRITTEN.set(written)
    try:
        yield written
    finally:
        _WRITTEN.reset(token)


Input = str | tuple[str, int, int]
"""A stage-1 input: a whole Parquet file (a path or fsspec URL), or (path, first row group, stop row group): the
row groups of one language in a file that holds several."""


def input_path(item: Input) -> tuple[str, list[int] | None]:
    """(the file, its row groups to read: None for all) of an input."""
    if isinstance(item, str):
        return item, None
    path, start, stop = item
    return path, list(range(int(start), int(stop)))


def open_input(path: str):
    """A readable binary file object for a local path or an fsspec URL."""
    return fsspec.open(path, "rb").open()
