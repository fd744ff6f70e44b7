"""`curate run` on a real two-node Ray cluster (see `cluster_helpers`): a model missing on the workers stops the
run with one line, the fixed rerun loses a worker node mid-stage-1 and still gives the shards of a local run, and
`ray job submit` runs the same command.

One module-scoped cluster: a head with no CPUs and two worker nodes of one CPU each, whose nodes see neither
the driver's virtualenv nor `~/.cache` (so curate reaches them only through Ray's `py_modules`).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))

from cluster_helpers import DASHBOARD_PORT, GCS_PORT, Cluster  # noqa: E402
from doc_blocks import blocks  # noqa: E402
from mirror import build_mirror, released  # noqa: E402

from curate.blocks.lid import ft176_path  # noqa: E402
from curate.language_configs.schema import SHIPPED_DIR  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CURATE = [sys.executable, "-m", "curate"]
KILL_AFTER_MANIFESTS = 4


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("cluster"), secrets.token_hex(16))
    try:
        cluster.start_head()
        cluster.start_worker("a")
        cluster.start_worker("b")
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def big_mirror(tmp_path_factory):
    """25 WARCs in the 2024 crawls (24 generated, one real)."""
    return build_mirror(tmp_path_factory.mktemp("big-mirror"), finnish_per_file=6, others_per_file=2,
                        files_per_crawl=12)


def scorer_config(folder: Path, model: Path) -> Path:
    """fin_Latn's config plus a quality scorer whose model is `model` (lid.176.ftz: P(fi) as the score)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (SHIPPED_DIR / "fin_Latn.yaml").read_text(encoding="utf-8")
    text += f"\nscorers:\n  quality: {{model: {model}, label: __label__fi, min_score: null}}\n"
    (folder / "fin_Latn.yaml").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def shared_model(tmp_path_factory) -> Path:
    model = tmp_path_factory.mktemp("models") / "quality.ftz"
    shutil.copy(ft176_path(), model)
    return model


def run_args(mirror, output: Path) -> list[str]:
    return ["run", "--lang", "fin", "--snapshots", "2024-*", "--source", str(mirror.root), "--lid", "ft176",
            "--output", str(output), "--files-per-unit", "1", "--buckets", "4", "--limit", "8"]


@pytest.fixture(scope="module")
def local_reference(big_mirror, shared_model, tmp_path_factory):
    """The same run on a local Ray (no cluster), with the quality model on shared storage."""
    folder = tmp_path_factory.mktemp("local")
    configs = scorer_config(folder / "configs", shared_model)
    result = subprocess.run([*CURATE, *run_args(big_mirror, folder / "out"), "--cpus", "2"], capture_output=True,
                            text=True, timeout=600, env={**os.environ, "CURATE_LANGUAGE_CONFIGS": str(configs)})
    assert result.returncode == 0, result.stderr[-3000:]
    documents = released(folder / "out")
    assert len(documents) > 50 and all("quality_score" in d for d in documents.values())
    return documents


def cluster_run(cluster: Cluster, mirror, output: Path, configs: Path) -> subprocess.Popen:
    """`curate run` as a driver in the cluster's namespace (output in `<output>.out` / `<output>.err`)."""
    return cluster.popen([*CURATE, *run_args(mirror, output)], log=output.with_suffix(".log"),
                         env={"RAY_ADDRESS": f"127.0.0.1:{GCS_PORT}", "CURATE_LANGUAGE_CONFIGS": str(configs)})


def finish(driver: subprocess.Popen, output: Path) -> tuple[int, str]:
    """Wait for a driver; its exit code and stderr."""
    code = driver.wait(timeout=900)
    return code, output.with_suffix(".err").read_text(errors="replace")


def test_a_model_missing_on_the_workers_stops_the_run_then_the_fixed_rerun_survives_a_lost_node(
        cluster, big_mirror, shared_model, local_reference, tmp_path):
    """The run stops with one line naming the node and the model; the rerun with the model on shared storage
    loses a worker node mid-stage-1 (a new one joins) and still releases what a local run releases."""
    driver_only = Path.home() / ".cache" / f"curate-test-{secrets.token_hex(4)}" / "quality.ftz"
    driver_only.parent.mkdir(parents=True)
    shutil.copy(shared_model, driver_only)
    try:
        failed = cluster_run(cluster, big_mirror, tmp_path / "out", scorer_config(tmp_path / "bad", driver_only))
        code, stderr = finish(failed, tmp_path / "out")
    finally:
        shutil.rmtree(driver_only.parent)
    assert code == 2, stderr[-3000:] + cluster.log_tails()
    line = stderr.strip().splitlines()[-1]
    assert line.startswith("error: node ") and "(127.0.0.1)" in line, stderr[-3000:]
    assert "scorers.quality" in line and str(driver_only) in line and "Traceback" not in stderr
    assert not list((tmp_path / "out" / "_work").rglob("*.json")), "nothing committed, nothing quarantined"

    manifests = tmp_path / "out" / "_work" / "manifests" / "stage1"
    driver = cluster_run(cluster, big_mirror, tmp_path / "out", scorer_config(tmp_path / "good", shared_model))
    deadline = time.monotonic() + 600
    while len(list(manifests.glob("*.json"))) < KILL_AFTER_MANIFESTS:
        assert driver.poll() is None, finish(driver, tmp_path / "out")[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.2)
    committed = len(list(manifests.glob("*.json")))
    assert cluster.kill_worker("a") >= 2, "the raylet and its workers"
    cluster.start_worker("c")  # waits until c and b are alive: a's death was noticed
    code, stderr = finish(driver, tmp_path / "out")
    assert code == 0, stderr[-3000:] + cluster.log_tails()
    assert committed < 25, "the node died mid-stage-1"
    assert released(tmp_path / "out") == local_reference
    stats = json.loads((tmp_path / "out" / "fin_Latn" / "stats.json").read_text())
    assert stats["quarantined"] == [] and not (tmp_path / "out" / "_work" / "quarantine").exists()


def documented_job_submit() -> list[str]:
    """The `ray job submit …` command of docs/cluster.md's first runnable block, as its words."""
    block = next(b for b in blocks(REPO / "docs" / "cluster.md") if b.skip is None and "ray job submit" in b.code)
    text = block.code.replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.lstrip().startswith("ray job submit"))
    return shlex.split(line, comments=True)


def test_the_documented_job_submit_releases_what_a_local_run_releases(cluster, mirror, tmp_path):
    """docs/cluster.md's `ray job submit` with its runtime env exactly as shown (no `pip`: the nodes share the
    virtualenv's packages), with the doc runner's placeholders (the mirror, ft176, an output every node sees)."""
    words = documented_job_submit()
    split = words.index("--")
    submit, entrypoint = words[:split], words[split + 1:]
    assert submit[:3] == ["ray", "job", "submit"] and "--runtime-env-json" in submit
    assert entrypoint[:2] == ["curate", "run"] and entrypoint[entrypoint.index("--output") + 1].startswith("s3://")
    output = entrypoint.index("--output")
    args = [*entrypoint[1:output], *entrypoint[output + 2:], "--source", str(mirror.root), "--lid", "ft176"]
    wait_for_job_agent(cluster)
    job = cluster.run([str(BIN / "ray"), *submit[1:], "--", "curate", *args, "--output", str(tmp_path / "cluster")],
                      timeout=600)
    assert job.returncode == 0, (job.stdout + job.stderr)[-3000:] + cluster.log_tails()
    assert "succeeded" in job.stdout
    local = subprocess.run([*CURATE, *args, "--output", str(tmp_path / "local")], capture_output=True, text=True,
                           timeout=600)
    assert local.returncode == 0, local.stderr[-3000:]
    for language in ("fin_Latn", "ekk_Latn", "swe_Latn"):
        documents = released(tmp_path / "cluster", language)
        assert documents and documents == released(tmp_path / "local", language), language
        assert f"{language}: {len(documents)} documents" in job.stdout


def wait_for_job_agent(cluster: Cluster, timeout: float = 180) -> None:
    """Submit an empty job until the job agent accepts it (it comes up a while after the head), up to `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        probe = cluster.run([str(BIN / "ray"), "job", "submit", f"--address=http://127.0.0.1:{DASHBOARD_PORT}",
                             "--no-wait", "--", "true"], timeout=120)
        if probe.returncode == 0:
            return
        assert time.monotonic() < deadline, f"the job agent never answered: {(probe.stdout + probe.stderr)[-1000:]}"
        time.sleep(1)
