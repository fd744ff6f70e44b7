"""Files of the dedup stage on any fsspec filesystem (a local path, `s3://`, `hf://`, `memory://`).

Each task writes its data files first and its small JSON manifest last; the manifest is the commit (on a
local disk the manifest is written to a temporary name and renamed, an object store PUT is already
all-or-nothing). Readers trust only the files a manifest lists, so a task killed half way is simply redone.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class FileRoot:
    """A directory tree under `root` (a local path or an fsspec URL): its filesystem and paths; cheap to pickle."""

    root: str

    @cached_property
    def fs(self) -> fsspec.AbstractFileSystem:
        return fsspec.core.url_to_fs(self.root)[0]

    @cached_property
    def base(self) -> str:
        return fsspec.core.url_to_fs(self.root)[1].rstrip("/")

    @property
    def is_local(self) -> bool:
        protocol = self.fs.protocol
        return "file" in (protocol if isinstance(protocol, tuple) else (protocol,))

    def __getstate__(self) -> dict:
        return {"root": self.root}

    def __setstate__(self, state: dict) -> None:
        object.__setattr__(self, "root", state["root"])

    def path(self, *parts: str) -> str:
        return "/".join([self.base, *parts])

    def url(self, *parts: str) -> str:
        """Like `path`, but keeping the protocol (`s3://…`), for readers in other processes; also takes one
        path that `path()` returned."""
        if len(parts) == 1 and parts[0].startswith(self.base + "/"):
            parts = (parts[0][len(self.base) + 1:],)
        return "/".join([self.root.rstrip("/"), *parts])

    def read_json(self, path: str) -> Any | None:
        """The JSON value at `path`; None when the file is missing or torn (no commit): one rule for every stage."""
        try:
            with self.fs.open(path, "rb") as handle:
                return json.loads(handle.read())
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None

    def write_json(self, path: str, value: Any) -> None:
        """Write `value` as JSON, atomically: it is the commit of whatever it lists."""
        self.write_atomic(path, json.dumps(value, indent=1, sort_keys=True, default=str).encode())

    def write_atomic(self, path: str, data: bytes) -> None:
        """Write a whole file so that a reader sees either nothing or all of it: a temporary name and a rename
        on a local disk, one PUT (already all-or-nothing) on an object store."""
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        if self.is_local:
            temporary = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
            try:
                with open(temporary, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, path)
            except BaseException:
                if os.path.exists(temporary):
                    os.remove(temporary)
                raise
        else:
            self.fs.pipe_file(path, data)


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
    """Run `work` unless `manifest` already exists; write its result as the manifest (the commit).

    Returns the result, with `"skipped": True` when it was read back from an earlier attempt.
    """
    result = store.read_json(manifest)
    if result is not None:
        result["skipped"] = True
        return result
    result = work()
    store.write_json(manifest, result)
    result["skipped"] = False
    return result


def open_input(path: str):
    """A readable binary file object for a local path or an fsspec URL."""
    return fsspec.open(path, "rb").open()
