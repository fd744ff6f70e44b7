"""A directory tree on any fsspec filesystem (a local path, `s3://`, `hf://`, `memory://`), the one rule every
layer uses for its small JSON files (written atomically, read as None when missing or torn: no commit), and the one
commit protocol: a manifest written last lists the files its work wrote, relative to the root, each with its size
and a checksum (blake2b on a local disk, the store's ETag elsewhere), and is trusted only while they are intact.

The storage layer of every stage: dedup's `Store` and task manifests (`dedup/storage.py`), the run's `Output` and
unit manifests (`pipeline/execution/storage.py`) and the robots.txt table the opt-out block reads
(`blocks/optout.py`).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterable
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

    # --- the commit protocol ----------------------------------------------------------------------------------
    def relative(self, path: str) -> str:
        """`path` (as `path()` gives it, or with the protocol) relative to the root."""
        for prefix in (self.root.rstrip("/") + "/", self.base + "/"):
            if path.startswith(prefix):
                return path[len(prefix):]
        return path

    def resolve(self, path: str) -> str:
        """A path a manifest recorded (relative to the root), as `path()` names it here."""
        return path if path.startswith(self.base + "/") else self.path(path)

    def file_record(self, path: str) -> dict:
        """What a manifest records of a file it lists: its size and a checksum (the store's ETag off a local disk)."""
        info = self.fs.info(path)
        record = {"size": int(info["size"])}
        if self.is_local:
            record["blake2b"] = file_digest(path)
        elif info.get("ETag") or info.get("etag"):
            record["etag"] = str(info.get("ETag") or info.get("etag")).strip('"')
        return record

    def damage(self, path: str, record: dict, checksum: bool = False) -> str | None:
        """Why a listed file cannot be trusted (missing, another size, another checksum), or None when it can."""
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return "missing"
        if int(info["size"]) != record.get("size"):
            return f"{int(info['size']):,} bytes, {record.get('size', 0):,} recorded"
        if checksum and self.is_local and record.get("blake2b") and file_digest(path) != record["blake2b"]:
            return "checksum differs"
        etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
        if checksum and record.get("etag") and etag and etag != record["etag"]:
            return "ETag differs"
        return None

    def commit(self, manifest: str, body: dict, written: Iterable[str]) -> dict:
        """Write `manifest`, the commit: `body` and `outputs`, each file of `written` relative to the root with its
        size and checksum. Returns what it wrote."""
        outputs = {self.relative(p): self.file_record(self.resolve(self.relative(p))) for p in sorted(set(written))}
        value = {**body, "outputs": outputs}
        self.write_json(manifest, value)
        return value

    def damaged(self, manifest: dict, checksum: bool = False) -> list[str]:
        """`relative path: why` for each file `manifest` lists that is missing or damaged (none: it can be trusted;
        `checksum`: also read each local file's checksum, not only its size)."""
        problems = []
        for relative, record in sorted(manifest.get("outputs", {}).items()):
            why = self.damage(self.resolve(relative), record, checksum)
            if why:
                problems.append(f"{relative}: {why}")
        return problems


def file_digest(path: str) -> str:
    """blake2b (128 bits) of a local file, read through one small buffer (a task's memory stays its own)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, lambda: hashlib.blake2b(digest_size=16)).hexdigest()
