"""The output tree on any fsspec filesystem, and the commit protocol that holds on object stores.

A unit writes its data files under unique names, then its small manifest last: the manifest is the
commit. Readers trust only files a manifest lists. On a local disk each file is written to a temporary
name and renamed; on object stores a single PUT is already all-or-nothing.
"""

from __future__ import annotations

import io
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curate.blocks import faults
from curate.errors import UserError
from curate.dedup.storage import FileRoot

LOCK_NAME = ".curate.lock"


@dataclass(frozen=True)
class Output(FileRoot):
    """The output root (a path or an fsspec URL such as `s3://bucket/out`) and its layout."""

    def language(self, code: str, *parts: str) -> str:
        return self.path(code, *parts)

    def manifest(self, stage: str, unit_id: str) -> str:
        return self.path("_work", "manifests", stage, f"{unit_id}.json")

    def unique(self, directory: str, stem: str, suffix: str = ".parquet") -> str:
        """A fresh file name under `directory`: reruns never overwrite what another attempt wrote."""
        return f"{directory}/{stem}-{uuid.uuid4().hex[:10]}{suffix}"

    # --- writing -----------------------------------------------------------------------------------
    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a whole file so that a reader sees either nothing or all of it."""
        faults.disk_full_point(path)
        self.write_atomic(path, data)

    def write_parquet(self, path: str, tables: list[pa.Table] | pa.Table, row_group_rows: int = 10_000) -> int:
        """Write tables (one or more row groups each) as one zstd Parquet file; returns bytes written."""
        tables = [tables] if isinstance(tables, pa.Table) else [t for t in tables if t.num_rows] or tables[:1]
        buffer = io.BytesIO()
        with pq.ParquetWriter(buffer, tables[0].schema, compression="zstd") as writer:
            for table in tables:
                writer.write_table(table.cast(tables[0].schema), row_group_size=row_group_rows)
        data = buffer.getvalue()
        self.write_bytes(path, data)
        return len(data)

    def write_json(self, path: str, value: Any) -> None:
        self.write_bytes(path, json.dumps(value, indent=1, sort_keys=True, default=str).encode())

    def read_json(self, path: str) -> Any | None:
        try:
            with self.fs.open(path, "rb") as handle:
                return json.loads(handle.read())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:
            return None  # a torn manifest is no commit

    def read_parquet(self, paths: list[str], **kwargs) -> pa.Table:
        tables = [pq.read_table(p, filesystem=self.fs, **kwargs) for p in paths]
        return pa.concat_tables(tables, promote_options="default") if tables else pa.table({})

    def check_writable(self) -> None:
        """One clear line if the output cannot be written."""
        probe = self.path("_work", f".probe-{uuid.uuid4().hex[:8]}")
        try:
            self.write_bytes(probe, b"ok")
            self.fs.rm(probe)
        except (OSError, PermissionError) as error:
            raise UserError(f"cannot write to {self.root} ({type(error).__name__}: {error}); "
                            f"choose another --output or fix its permissions") from None


class RunLock:
    """`<out>/.curate.lock`: stops two runs writing the same output.

    The lock is created atomically where the store allows it (`O_EXCL` on a local or mounted disk; a conditional
    create, such as S3's `If-None-Match: *`, where fsspec supports mode `xb`); on stores without one (the Hugging
    Face Hub) a short race between two starting runs remains. The holder renews its lease every `LEASE_S / 3`
    seconds, so a lock left by a dead driver is taken over once its lease has run out (at once when that driver
    ran on this host and its pid is gone)."""

    LEASE_S = 300.0

    def __init__(self, output: Output):
        self.output = output
        self.path = output.path(LOCK_NAME)
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def __enter__(self) -> RunLock:
        held = self.output.read_json(self.path)
        if held and self._stale(held):
            self.output.fs.rm(self.path)
        if not self._create(json.dumps(self._record()).encode()):
            held = self.output.read_json(self.path) or {}
            raise UserError(
                f"another curate run (pid {held.get('pid')} on {held.get('host')}, started {held.get('started')}) "
                f"is writing to {self.output.root}; wait for it, or delete {self.path} if it is gone"
            )
        self._renewer = threading.Thread(target=self._renew, name="curate-lock-lease", daemon=True)
        self._renewer.start()
        return self

    def _record(self) -> dict:
        return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "token": self.token, "renewed": time.time(), "lease_s": self.LEASE_S}

    def _create(self, data: bytes) -> bool:
        """Create the lock file only if there is none; False when another run holds it."""
        self.output.fs.makedirs(self.output.root, exist_ok=True)
        try:
            if self.output.is_local:
                descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(data)
                return True
            try:
                with self.output.fs.open(self.path, "xb") as handle:
                    handle.write(data)
                return True
            except (ValueError, NotImplementedError, TypeError):  # no conditional create on this store
                if self.output.fs.exists(self.path):
                    return False
                self.output.fs.pipe_file(self.path, data)
                return True
        except FileExistsError:
            return False

    def _renew(self) -> None:
        started = None
        while not self._stop.wait(self.LEASE_S / 3):
            held = self.output.read_json(self.path) or {}
            if held.get("token") != self.token:
                return  # taken over or removed: nothing of ours to renew
            started = started or held.get("started")
            self.output.write_json(self.path, {**self._record(), "started": started})

    def _stale(self, held: dict) -> bool:
        renewed = held.get("renewed")
        if isinstance(renewed, (int, float)) and time.time() - renewed > float(held.get("lease_s", self.LEASE_S)):
            return True  # its holder stopped renewing: dead, or cut off from the output
        if held.get("host") != socket.gethostname():
            return False
        try:
            os.kill(int(held.get("pid", -1)), 0)
        except (ProcessLookupError, ValueError):
            return True
        except PermissionError:
            return False
        return False

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        held = self.output.read_json(self.path)
        if held and held.get("token") == self.token:
            self.output.fs.rm(self.path)
