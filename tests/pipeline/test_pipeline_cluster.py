"""`ray job submit … -- curate run …` against a running Ray cluster with token authentication on."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_job_submitted_to_a_running_cluster(mirror, tmp_path):
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}  # the nodes have curate installed
    env.pop("RAY_ADDRESS", None)
    gcs, dashboard = free_port(), free_port()
    start = subprocess.run(
        [str(BIN / "ray"), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={gcs}", "--num-cpus=2",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}", "--disable-usage-stats"],
        env=env, capture_output=True, text=True, timeout=180)
    assert start.returncode == 0, start.stderr[-2000:]
    try:
        output = tmp_path / "out"
        for _ in range(20):  # the job agent comes up a few seconds after `ray start` returns
            job = subprocess.run(
                [str(BIN / "ray"), "job", "submit", f"--address=http://127.0.0.1:{dashboard}", "--working-dir",
                 str(REPO), "--", "curate", "run", "--lang", "fin", "--snapshots", "CC-MAIN-2024-18",
                 "--source", str(mirror.root), "--lid", "ft176", "--output", str(output), "--buckets", "2"],
                env=env, capture_output=True, text=True, timeout=400)
            if "No available agent" not in job.stderr:
                break
            time.sleep(3)
        assert job.returncode == 0, (job.stdout + job.stderr)[-3000:]
        assert "succeeded" in job.stdout
        shards = list((output / "fin_Latn" / "data").glob("*.parquet"))
        rows = sum(pq.read_metadata(s).num_rows for s in shards)
        assert rows > 0 and f"fin_Latn: {rows} documents" in job.stdout
    finally:
        subprocess.run([str(BIN / "ray"), "stop", "--force"], env=env, capture_output=True, timeout=120)
