"""A directory tree on any fsspec filesystem (a local path, `s3://`, `hf://`, `memory://`), and the one rule every
layer uses for its small JSON files: written atomically, read as None when missing or torn (no commit).

The storage layer of every stage: dedup's `Store` (`dedup/storage.py`), the run's `Output` and manifests
(`pipeline/execution/storage.py`) and the robots.txt table the opt-out block reads (`blocks/optout.py`).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import fsspec


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
