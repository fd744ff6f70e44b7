"""The stage as the pipeline runs it: the same assignments whatever the workers, task counts and memory
budget; resumable after a kill; a fingerprint that follows the set of inputs; fsspec work directories."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dedup_helpers import as_dict, assignments, planted_signatures, write_files

from curate import dedup
from curate.language_configs.minhash import DedupConfig

CONFIG = DedupConfig(by_url=True)
ROOT = Path(__file__).resolve().parents[2]


def _corpus(documents: int, seed: int) -> pa.Table:
    """Planted MinHash clusters plus planted exact duplicates and shared URLs."""
    table, _ = planted_signatures(documents, seed=seed)
    rng = np.random.default_rng(seed + 1)
    text = rng.integers(0, 2**64 - 1, documents, dtype=np.uint64, endpoint=True)
    copies = rng.choice(documents, size=documents // 20, replace=False)
    text[copies[1::2]] = text[copies[::2]][: len(copies[1::2])]
    urls = [f"https://example.fi/{u}" for u in rng.integers(0, documents, documents)]
    table = table.append_column("text_hash", pa.array(text, pa.uint64()))
    return table.append_column("url", pa.array(urls, pa.string()))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[str]:
    return write_files(_corpus(20_000, seed=7), tmp_path_factory.mktemp("stage1"), files=6, row_group_size=2_000)


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> dict[str, pa.Table]:
    result = dedup.cluster(corpus, str(tmp_path_factory.mktemp("work")), 6, CONFIG, num_tasks=1)
    return {m: assignments(result, m) for m in result.methods}


def _spawn_map(workers: int):
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    return pool, pool.map


@pytest.mark.parametrize(
    "workers,num_tasks,partition_bytes",
    [(None, 1, 128 << 20), (None, 5, 1 << 16), (1, 3, 1 << 20), (2, 2, 1 << 18), (4, 6, 1 << 19)],
)
def test_same_assignments_whatever_the_workers_and_tasks(
    corpus, reference, tmp_path, workers, num_tasks, partition_bytes
):
    pool, map_fn = _spawn_map(workers) if workers else (None, map)
    try:
        result = dedup.cluster(
            corpus, str(tmp_path), 6, CONFIG, map_fn=map_fn, num_tasks=num_tasks, partition_bytes=partition_bytes
        )
    finally:
        if pool:
            pool.shutdown()
    assert result.methods == ("exact", "minhash", "url")
    for method, table in reference.items():
        assert assignments(result, method).equals(table), method
    assert reference["minhash"].num_rows > 1000
    assert reference["exact"].num_rows > 500 and reference["url"].num_rows > 1000


def test_second_call_returns_the_committed_result(corpus, tmp_path):
    first = dedup.cluster(corpus, str(tmp_path), 6, CONFIG)
    calls = []

    def counting_map(fn, items):
        calls.append(fn)
        return map(fn, items)

    again = dedup.cluster(list(reversed(corpus)), str(tmp_path), 6, CONFIG, map_fn=counting_map)
    assert calls == [] and again == first and again.stats == first.stats
    entries = sorted(p.name for p in Path(first.root).iterdir())
    assert entries == ["exact", "minhash", "plan.json", "result.json", "url"]  # spills removed after the commit
    assert len(list((Path(first.root) / "minhash").glob("bucket-*.parquet"))) == 6


def test_a_moved_output_keeps_its_result_and_a_lost_assignment_file_is_clustered_again(corpus, tmp_path):
    import shutil

    first_root = tmp_path / "first"
    shutil.copytree(Path(corpus[0]).parent, first_root / "stage1")
    inputs = [str(first_root / "stage1" / Path(p).name) for p in corpus]
    first = dedup.cluster(inputs, str(first_root / "dedup"), 6, CONFIG, relative_to=str(first_root))
    moved_root = tmp_path / "moved"
    shutil.move(first_root, moved_root)
    calls = []

    def counting_map(fn, items):
        calls.append(fn)
        return map(fn, items)

    moved_inputs = [str(moved_root / "stage1" / Path(p).name) for p in corpus]
    again = dedup.cluster(moved_inputs, str(moved_root / "dedup"), 6, CONFIG, map_fn=counting_map,
                          relative_to=str(moved_root))
    assert calls == [] and again.fingerprint == first.fingerprint, "no task ran again"
    assert again.root.startswith(str(moved_root)), "the result is read where the output now is"
    expected = {m: assignments(again, m) for m in again.methods}

    Path(again.bucket_file("minhash", 2)).unlink()
    repaired = dedup.cluster(moved_inputs, str(moved_root / "dedup"), 6, CONFIG, map_fn=counting_map,
                             relative_to=str(moved_root))
    assert calls, "clustered again"
    assert {m: assignments(repaired, m) for m in repaired.methods} == expected


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_damaged_assignment_file_is_found_and_clustered_again(corpus, reference, tmp_path):
    first = dedup.cluster(corpus, str(tmp_path), 6, CONFIG)
    committed = json.loads((Path(first.root) / "result.json").read_text())
    assert sorted(committed["outputs"]) == sorted(f"{m}/bucket-{b:05d}.parquet" for m in first.methods
                                                  for b in range(6))
    assert all(r["size"] > 0 and len(r["blake2b"]) == 32 for r in committed["outputs"].values())
    _truncate(Path(first.bucket_file("minhash", 3)))
    calls = []

    def counting_map(fn, items):
        calls.append(fn)
        return map(fn, items)

    repaired = dedup.cluster(corpus, str(tmp_path), 6, CONFIG, map_fn=counting_map)
    assert calls, "clustered again"
    for method, table in reference.items():
        assert assignments(repaired, method).equals(table), method


def test_a_task_whose_file_was_damaged_is_redone_and_the_others_are_reused(corpus, reference, tmp_path):
    first = dedup.cluster(corpus, str(tmp_path), 6, CONFIG, num_tasks=4, keep_intermediate=True)
    (Path(first.root) / "result.json").unlink()  # as if the run had stopped before its end
    manifests = sorted(Path(first.root).glob("lsh-edges/_manifests/*.json"))
    damaged = json.loads(manifests[0].read_text())
    run = next(name for name in damaged["outputs"] if name.endswith(".bin"))
    _truncate(Path(first.root) / run)
    resumed = dedup.cluster(corpus, str(tmp_path), 6, CONFIG, num_tasks=4)
    timings = resumed.stats["timings"]
    assert 0 < timings["tasks_skipped"] < timings["tasks"], timings  # only what read or was the damaged file
    for method, table in reference.items():
        assert assignments(resumed, method).equals(table), method


def test_fingerprint_follows_inputs_and_config(corpus, tmp_path):
    base = dedup.fingerprint(corpus, CONFIG, 6)
    assert dedup.fingerprint(list(reversed(corpus)), CONFIG, 6) == base
    assert dedup.fingerprint(corpus[:-1], CONFIG, 6) != base
    assert dedup.fingerprint(corpus, DedupConfig(by_url=True, seed=2), 6) != base
    assert dedup.fingerprint(corpus, CONFIG, 7) != base
    copy = tmp_path / "copy.parquet"
    table = pq.read_table(corpus[0])
    pq.write_table(table, copy)
    before = dedup.fingerprint([copy.as_posix()], CONFIG, 6)
    pq.write_table(table.slice(1), copy)  # same path, new content
    assert dedup.fingerprint([copy.as_posix()], CONFIG, 6) != before


def test_more_input_files_do_not_keep_stale_cluster_sizes(tmp_path):
    rng = np.random.default_rng(9)
    keys = rng.integers(0, 2**64 - 1, 300, dtype=np.uint64, endpoint=True)
    values = rng.integers(0, 2**64 - 1, (300, 14), dtype=np.uint64, endpoint=True)
    values[1, 4] = values[0, 4]  # documents 0 and 1: a cluster of 2 in the first files
    values[299, 9] = values[1, 9]  # document 299, in the last file, joins it
    table = pa.table(
        {
            "doc_key": pa.array(keys),
            "minhash_bands": pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), 14),
        }
    )
    files = write_files(table, tmp_path / "in", files=3)
    config = DedupConfig(exact=False)
    first = dedup.cluster(files[:2], str(tmp_path / "work"), 4, config)
    second = dedup.cluster(files, str(tmp_path / "work"), 4, config)
    assert first.fingerprint != second.fingerprint and first.root != second.root
    cluster = min(int(keys[0]), int(keys[1]), int(keys[299]))
    assert as_dict(assignments(first)) == {int(k): (min(int(keys[0]), int(keys[1])), 2) for k in keys[:2]}
    assert as_dict(assignments(second)) == {int(k): (cluster, 3) for k in (keys[0], keys[1], keys[299])}


_KILLED_RUN = """
import sys
sys.path.insert(0, {root!r})
from curate import dedup
from language_configs.minhash import DedupConfig
dedup.cluster({files!r}, {work!r}, 6, DedupConfig(by_url=True), num_tasks=4, partition_bytes=1 << 18)
"""


def test_kill_and_resume_gives_identical_assignments(tmp_path):
    files = write_files(_corpus(40_000, seed=3), tmp_path / "in", files=8, row_group_size=5_000)
    work = tmp_path / "work"
    script = _KILLED_RUN.format(root=str(ROOT), files=files, work=str(work))
    process = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if len(list(work.glob("*/lsh-edges/_manifests/*.json"))) >= 2:
                break
            time.sleep(0.01)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not list(work.glob("*/result.json"))
    resumed = dedup.cluster(files, str(work), 6, DedupConfig(by_url=True), num_tasks=4, partition_bytes=1 << 18)
    assert resumed.stats["timings"]["tasks_skipped"] >= 2  # the committed tasks were not redone
    clean = dedup.cluster(files, str(tmp_path / "clean"), 6, DedupConfig(by_url=True), num_tasks=2)
    for method in clean.methods:
        assert assignments(resumed, method).equals(assignments(clean, method)), method
    assert resumed.stats["methods"] == clean.stats["methods"]


def test_fsspec_work_directory(corpus, reference):
    result = dedup.cluster(corpus, "memory://dedup-test/work", 6, CONFIG, num_tasks=2)
    assert result.root.startswith("memory://") and result.bucket_file("minhash", 0).startswith("memory://")
    for method, table in reference.items():
        assert assignments(result, method).equals(table), method
