"""How the executor classifies a failed unit: poison (its worker died: bisect, quarantine), a code fault (an
exception: stop with its traceback), environment (stop with one line), or the cluster's (resubmit, actors included);
and what a stage's code digest covers."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest
import ray.exceptions as rex

import curate
from curate.errors import UserError
from curate.pipeline.execution.executor import CODE, ENVIRONMENT, POISON, TRANSIENT, classify, environment_error
from curate.pipeline.execution.provenance import code_digest
from curate.pipeline.sources.remote import SourceUnavailable


def task_error(cause: BaseException) -> rex.RayTaskError:
    return rex.RayTaskError("run", "Traceback …", cause, pid=42, ip="10.0.0.7")


@pytest.mark.parametrize("error, kind", [
    (task_error(UserError("fin_Latn scorers.quality.model: no file '/m.bin'")), ENVIRONMENT),
    (task_error(ModuleNotFoundError("No module named 'kenlm'")), ENVIRONMENT),
    (task_error(PermissionError(errno.EACCES, "Permission denied", "/out/x")), ENVIRONMENT),
    (task_error(SourceUnavailable("x.warc.gz: giving up after 8 attempts (HTTP 503)")), ENVIRONMENT),
    (task_error(FileNotFoundError(errno.ENOENT, "No such file", "https://host/x.warc.gz")), ENVIRONMENT),
    (task_error(OSError(errno.ENOSPC, "No space left on device", "/out/x")), ENVIRONMENT),
    (task_error(ValueError("a bug the input triggers")), CODE),
    (task_error(rex.ActorDiedError()), TRANSIENT),  # a bucket task whose scorer actor was lost
    (rex.ActorDiedError(), TRANSIENT),
    (rex.WorkerCrashedError(), POISON),
    (rex.NodeDiedError("node 10.0.0.7 died"), TRANSIENT),
    (rex.OutOfMemoryError("the memory monitor killed the worker"), TRANSIENT),
    (rex.ObjectLostError("ab" * 14, None, ""), TRANSIENT),
])
def test_failures_are_classified(error, kind):
    assert classify(error) == kind


def test_a_worker_crash_on_a_lost_node_is_not_poison():
    assert classify(rex.WorkerCrashedError(), node_lost=True) == TRANSIENT


def test_an_environment_error_names_the_node_and_the_fix():
    line = str(environment_error(task_error(UserError("fin_Latn scorers.quality.model: no file '/m.bin'"))))
    assert line == "node 10.0.0.7: fin_Latn scorers.quality.model: no file '/m.bin'"
    line = str(environment_error(task_error(ModuleNotFoundError("No module named 'kenlm'"))))
    assert line.startswith("node 10.0.0.7: ModuleNotFoundError: No module named 'kenlm'; fix this node's")
    assert "\n" not in line and "rerun the same command to resume" in line


STAGE1_ROOTS = ("curate.pipeline.execution.stage1", "curate.blocks.url_filter", "curate.blocks.extract",
                "curate.blocks.lid")


def test_the_code_digest_covers_the_modules_a_stage_imports_and_nothing_else(tmp_path):
    package = tmp_path / "curate"
    shutil.copytree(Path(curate.__file__).parent, package, ignore=shutil.ignore_patterns(
        ".git", "tests", "benchmarks", "__pycache__", ".venv", "*.pyc", "*.ftz", "*.gz"))
    original = code_digest(package, STAGE1_ROOTS)

    def edited(relative: str) -> str:
        path = package / relative
        text = path.read_text()
        path.write_text(text + "\n# edited\n")
        digest = code_digest(package, STAGE1_ROOTS)
        path.write_text(text)
        return digest

    assert edited("README.md") == original
    assert edited("docs/cluster.md") == original
    assert edited("pipeline/publishing/report.py") == original, "stage 1 never imports the report"
    assert edited("pipeline/execution/run.py") == original, "nor the driver's plan"
    for imported in ("blocks/url_filter.py", "blocks/statistics.py", "blocks/warc.py", "language_configs/schema.py",
                     "pipeline/sources/remote.py"):
        assert edited(imported) != original, imported
    assert code_digest(package, STAGE1_ROOTS) == original


def test_the_run_lock_is_exclusive_renewed_and_taken_over_when_its_lease_ran_out(tmp_path, monkeypatch):
    import json
    import time

    from curate.pipeline.execution.storage import Output, RunLock

    output = Output(str(tmp_path / "out"))
    with RunLock(output) as lock:
        with pytest.raises(UserError, match="another curate run"):
            RunLock(output).__enter__()
    assert not Path(lock.path).exists()
    monkeypatch.setattr(RunLock, "LEASE_S", 0.3)
    with RunLock(output) as lock:
        first = json.loads(Path(lock.path).read_text())["renewed"]
        while json.loads(Path(lock.path).read_text())["renewed"] == first:  # the holder renews its lease
            time.sleep(0.05)
    monkeypatch.undo()

    dead = {"pid": 1, "host": "another-host", "started": "earlier", "token": "x", "renewed": time.time() - 60,
            "lease_s": 30}
    Path(lock.path).write_text(json.dumps(dead))
    with RunLock(output) as lock:  # a driver on another host stopped renewing a minute ago
        assert json.loads(Path(lock.path).read_text())["token"] == lock.token
    alive = {**dead, "renewed": time.time()}
    Path(lock.path).write_text(json.dumps(alive))
    with pytest.raises(UserError, match="pid 1 on another-host"):
        RunLock(output).__enter__()


def test_manifests_name_files_relative_to_the_output_and_are_trusted_only_while_intact(tmp_path):
    import json
    from dataclasses import dataclass

    from curate.pipeline.execution.storage import Manifests, Output, verify

    @dataclass
    class Result:
        files: dict

    first = Output(str(tmp_path / "first"))
    shard = first.path("fin_Latn", "data", "00000-000.parquet")
    first.write_bytes(shard, b"rows")
    Manifests(first).commit("final", "fin_Latn-00000", "f1", Result({shard: 4}))
    recorded = json.loads(Path(first.manifest("final", "fin_Latn-00000")).read_text())
    assert recorded["result"]["files"] == {"fin_Latn/data/00000-000.parquet": 4}
    assert recorded["outputs"]["fin_Latn/data/00000-000.parquet"]["size"] == 4

    shutil.move(tmp_path / "first", tmp_path / "moved")
    moved = Output(str(tmp_path / "moved"))
    manifest = Manifests(moved).committed("final", "fin_Latn-00000", "f1")
    assert manifest["result"]["files"] == {moved.path("fin_Latn", "data", "00000-000.parquet"): 4}
    assert Manifests(moved).committed("final", "fin_Latn-00000", "another fingerprint") is None
    assert verify(moved) == (1, [])

    Path(moved.path("fin_Latn", "data", "00000-000.parquet")).write_bytes(b"row")
    assert Manifests(moved).committed("final", "fin_Latn-00000", "f1") is None, "a damaged file is not trusted"
    assert verify(moved) == (1, ["final/fin_Latn-00000: fin_Latn/data/00000-000.parquet: 3 bytes, 4 recorded"])
    Path(moved.path("fin_Latn", "data", "00000-000.parquet")).write_bytes(b"ROWS")  # same size, other bytes
    assert Manifests(moved).committed("final", "fin_Latn-00000", "f1") is not None, "a rerun checks sizes only"
    assert verify(moved) == (1, ["final/fin_Latn-00000: fin_Latn/data/00000-000.parquet: checksum differs"])


def test_text_library_versions_read_only_the_metadata_headers(tmp_path, monkeypatch):
    """The versions that shape text, read from each package's metadata headers alone, are those the full metadata
    gives: a package that requires spaCy (a model) counts, one that needs it only as an extra does not, and an
    egg-info package's requirements come from its requires.txt."""
    import importlib
    import sys
    from importlib import metadata

    from curate.pipeline.execution import provenance

    site = tmp_path / "site"
    packages = {
        "fi_test_model-3.8.0.dist-info": "Metadata-Version: 2.1\nName: fi_test_model\nVersion: 3.8.0\n"
                                         "Requires-Dist: spacy<3.9.0,>=3.8.0\n\nA model.\nName: not-this\n",
        "uses_spacy_extra-1.0.dist-info": "Metadata-Version: 2.1\nName: uses-spacy-extra\nVersion: 1.0\n"
                                          "Requires-Dist: spacy; extra == \"nlp\"\n\nRequires-Dist: spacy\n",
        "old_model-0.1.egg-info": "Metadata-Version: 1.0\nName: old_model\nVersion: 0.1\n\n",
    }
    for folder, text in packages.items():
        (site / folder).mkdir(parents=True)
        (site / folder / ("PKG-INFO" if folder.endswith("egg-info") else "METADATA")).write_text(text)
    (site / "old_model-0.1.egg-info" / "requires.txt").write_text("spacy>=3\n")
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    importlib.invalidate_caches()
    provenance.text_library_versions.cache_clear()
    try:
        found = provenance.text_library_versions()
    finally:
        provenance.text_library_versions.cache_clear()
    assert found["fi_test_model"] == "3.8.0" and found["old_model"] == "0.1" and "uses-spacy-extra" not in found
    full = {}
    for distribution in metadata.distributions():
        name = distribution.metadata["Name"].lower()
        requires = distribution.requires or []
        if name in provenance.TEXT_LIBRARIES or (
                name != "curate-corpus" and any(r.startswith("spacy") and "extra ==" not in r for r in requires)):
            full.setdefault(name, distribution.version)
    assert found == dict(sorted(full.items()))
