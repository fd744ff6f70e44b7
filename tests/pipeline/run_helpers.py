"""What the `curate run` test modules share: the run options and CLI calls on the shared mirror."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from curate.pipeline.execution.run import RunOptions

FINEWEB2_COLUMNS = ["id", "url", "date", "dump", "file_path", "text", "language", "language_script",
                    "language_score", "top_langs"]
CURATE = [sys.executable, "-m", "curate"]


def run_options(mirror, output: Path, **extra) -> RunOptions:
    settings = dict(languages=["fin"], snapshots="2024-*", source=str(mirror.root), output=str(output), lid="ft176",
                    files_per_unit=2, buckets=4, num_cpus=2)
    return RunOptions(**{**settings, **extra})


def cli(*args: str, env: dict | None = None, check: bool = False) -> subprocess.CompletedProcess:
    result = subprocess.run([*CURATE, *args], capture_output=True, text=True, timeout=600,
                            env={**os.environ, **(env or {})})
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def cli_run(mirror, output: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return cli("run", "--lang", "fin", "--snapshots", "2024-*", "--source", str(mirror.root), "--lid", "ft176",
               "--output", str(output), "--files-per-unit", "2", "--buckets", "4", "--cpus", "2", *extra, env=env)
