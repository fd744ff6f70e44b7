"""The output tree on any fsspec filesystem, and the one commit protocol of every stage.

A unit writes its data files under unique names, then its small manifest last: the manifest is the
commit (`files.py` `FileRoot.commit`, the protocol dedup's tasks commit with too). A manifest names its files
relative to the output root, each with its size and a checksum (blake2b on a local disk, the store's ETag
elsewhere), so an output can be moved, copied or synced to object storage and back
and resumed where it now is. Readers trust only files a manifest lists, and a rerun trusts a manifest only while
its files are there with their recorded sizes (`Manifests.committed`); `verify` checks the checksums too. On a
local disk each file is written to a temporary name and renamed; on object stores a single PUT is already
all-or-nothing.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import shutil
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
from curate.files import FileRoot

LOCK_NAME = ".curate.lock"
log = logging.getLogger("curate")


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

    def remove_temporaries(self) -> int:
        """Delete the `*.tmp-*` files a killed writer left (only while this run holds the lock); returns how many."""
        if not self.is_local or not os.path.isdir(self.base):
            return 0
        removed = 0
        for directory, folders, names in os.walk(self.base):
            for name in [n for n in folders if n.startswith(".tmp-")]:
                shutil.rmtree(os.path.join(directory, name), ignore_errors=True)  # a killed writer's spool
                folders.remove(name)
                removed += 1
            for name in names:
                if ".tmp-" in name:
                    os.remove(os.path.join(directory, name))
                    removed += 1
        return removed

    # --- writing -----------------------------------------------------------------------------------
    def write_atomic(self, path: str, data: bytes) -> None:
        """Write a whole file so that a reader sees either nothing or all of it."""
        faults.disk_full_point(path)
        super().write_atomic(path, data)

    write_bytes = write_atomic

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

    def read_parquet(self, paths: list[str], **kwargs) -> pa.Table:
        tables = [pq.read_table(self.resolve(p), filesystem=self.fs, **kwargs) for p in paths]
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


class Manifests:
    """Commit, look up and verify the unit manifests of one output (every stage: stage 1, stage 3, final).

    `_work/manifests/<stage>/<unit>.json` holds the unit's fingerprint, its result (paths relative to the output
    root), `outputs` (each file it wrote: size and checksum), its provenance and when it committed."""

    def __init__(self, output: Output, provenance: dict | None = None):
        self.output = output
        self.provenance = provenance or {}

    def committed(self, stage: str, unit_id: str, unit_fingerprint: str) -> dict | None:
        """The unit's manifest (paths resolved here) when it matches `unit_fingerprint` and every file it lists is
        there with its recorded size; None otherwise (the unit is redone)."""
        manifest = self.output.read_json(self.output.manifest(stage, unit_id))
        if not manifest or manifest.get("fingerprint") != unit_fingerprint or "outputs" not in manifest:
            return None
        problems = self.damage(manifest)
        if problems:
            log.warning("%s unit %s: %s; computing it again", stage, unit_id, "; ".join(problems))
            return None
        return self.resolved(manifest)

    def commit(self, stage: str, unit_id: str, unit_fingerprint: str, result: object, **extra) -> dict:
        """Write the unit's manifest (its commit); returns it with paths resolved here."""
        raw = dataclasses.asdict(result)
        written = {v for v in _strings(raw) if self.output.relative(v) != v}
        body = _map_strings(raw, self.output.relative)
        manifest = self.output.commit(self.output.manifest(stage, unit_id), {
            "stage": stage, "unit": unit_id, "fingerprint": unit_fingerprint, "result": body,
            "provenance": self.provenance, "committed": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra}, written)
        faults.kill_point("after_unit_commit")
        return self.resolved(manifest)

    def resolved(self, manifest: dict) -> dict:
        """`manifest` with the files of its result as this output's paths."""
        listed = set(manifest.get("outputs", {}))
        return {**manifest, "result": _map_strings(manifest["result"],
                                                   lambda v: self.output.path(v) if v in listed else v)}

    def damage(self, manifest: dict, checksum: bool = False) -> list[str]:
        """`relative path: why` for each file of `manifest` that is missing or damaged."""
        return self.output.damaged(manifest, checksum)

    def record_quarantine(self, unit_id: str, quarantined: list[str]) -> None:
        """`_work/quarantine/<unit>.json`: the unit's quarantined files and errors, apart from its commit (a rerun
        retries them unless told `--skip-quarantined`); removed once the unit completes without any."""
        path = self.output.path("_work", "quarantine", f"{unit_id}.json")
        if quarantined:
            self.output.write_json(path, {"unit": unit_id, "quarantined": quarantined})
        elif self.output.fs.exists(path):
            self.output.fs.rm(path)


def _map_strings(value: Any, fn) -> Any:
    """`value` (JSON-like) with `fn` applied to every string in it, dict keys included."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {(fn(k) if isinstance(k, str) else k): _map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_map_strings(v, fn) for v in value]
    return value


def _strings(value: Any) -> set[str]:
    found: set[str] = set()
    _map_strings(value, lambda v: found.add(v) or v)
    return found


def verify(output: Output) -> tuple[int, list[str]]:
    """Every committed manifest's files checked (existence, size, checksum): (units checked, `<stage>/<unit>:
    <file>: why` for each problem, none when the output is whole). Changes nothing."""
    manifests = Manifests(output)
    problems = []
    paths = sorted(output.fs.glob(output.path("_work", "manifests", "*", "*.json")))
    for path in paths:
        stage, unit = path.rsplit("/", 2)[-2], path.rsplit("/", 1)[-1].removesuffix(".json")
        manifest = output.read_json(path)
        if not isinstance(manifest, dict):
            problems.append(f"{stage}/{unit}: the manifest cannot be read")
        elif "outputs" not in manifest:
            problems.append(f"{stage}/{unit}: written by an older curate (no file list): a rerun computes it again")
        else:
            problems += [f"{stage}/{unit}: {why}" for why in manifests.damage(manifest, checksum=True)]
    return len(paths), problems


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
