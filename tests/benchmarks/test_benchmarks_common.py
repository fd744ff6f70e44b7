"""benchmarks/common.py: the CPU clock of a process tree counts live and reaped descendants."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from common import tree_cpu_seconds  # noqa: E402

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {seconds}:\n    pass\n"

# a child that runs a grandchild burning 0.3 CPU seconds (and reaps it), burns 0.2 itself, says so, then waits
CHILD = (
    "import subprocess, sys\n"
    f"subprocess.run([sys.executable, '-c', {BURN.format(seconds=0.3)!r}], check=True)\n"
    + BURN.format(seconds=0.2)
    + "print('burnt', flush=True)\nsys.stdin.readline()\n"
)


def test_tree_cpu_counts_live_child_and_reaped_grandchild():
    before = tree_cpu_seconds()
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "burnt"
        # the child is alive: its own 0.2 s and the 0.3 s of the grandchild it reaped
        assert tree_cpu_seconds(child.pid) >= 0.5
        during = tree_cpu_seconds()
        assert during - before >= 0.5
    finally:
        child.communicate("\n", timeout=30)
    # once this process has reaped the child, its CPU moves into ours (cutime) and is not lost
    assert tree_cpu_seconds() >= during


def test_tree_cpu_of_a_missing_process_is_zero():
    assert tree_cpu_seconds(2**22 + 12345) == 0.0  # above Linux's pid_max: no such process


def test_the_datatrove_sides_import_the_tests_helpers(tmp_path):
    """A benchmark's datatrove side builds FineWeb2's filters from the tests' helpers: the paths it sets reach them
    (and everything they import), in a fresh interpreter as the benchmarks run."""
    benchmarks = Path(__file__).resolve().parents[2] / "benchmarks"
    script = ("import sys; from pathlib import Path; sys.argv = ['e2e']; import e2e; "
              f"steps = e2e.datatrove_steps(Path({str(tmp_path)!r}), Path({str(tmp_path / 'out')!r}), 1); "
              "print([name for name, _ in steps])")
    built = subprocess.run([sys.executable, "-c", script], cwd=benchmarks, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(benchmarks)})
    assert built.returncode == 0, built.stderr[-2000:]
    assert "minhash" in built.stdout or "signatures" in built.stdout, built.stdout
    filters = subprocess.run([sys.executable, str(benchmarks / "filters.py"), "--help"], capture_output=True,
                             text=True)
    assert filters.returncode == 0 and "usage" in filters.stdout, filters.stderr[-2000:]
