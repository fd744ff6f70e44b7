"""Helpers shared by the benchmarks: import path, the corpus cache, one-core pinning, CPU clocks, profiles, tables.

A benchmark runs each pipeline it compares in its own fresh interpreter (`SideProcess`), pinned to the same single
core, so start-up costs are measured from a cold import and neither side inherits the other's loaded models or
warmed caches; the driver then asks the sides for timed passes in turn, so a change in machine load falls on both.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
BENCHMARKS = PROJECT / "benchmarks"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def setup() -> None:
    """Make the project and the benchmarks importable; keep Ray (if anything starts it) on the local default."""
    for path in (str(PROJECT), str(BENCHMARKS)):
        if path not in sys.path:
            sys.path.insert(0, path)
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def use_test_helpers() -> None:
    """Make the tests' helpers importable (mirrors, the datatrove FineWeb2 filters and their reference documents)."""
    for path in (str(PROJECT / "tests"), str(PROJECT / "tests" / "filters")):
        if path not in sys.path:
            sys.path.insert(0, path)


def cache_dir() -> Path:
    """Where generated corpora are kept between runs (`$CURATE_BENCH_DIR`, else <tmp>/curate-bench)."""
    return Path(os.environ.get("CURATE_BENCH_DIR", Path(tempfile.gettempdir()) / "curate-bench"))


def pin_to_one_core(cpu: int | None = None) -> int | None:
    """Pin this process (and every process it starts afterwards) to one CPU; returns it (None if unsupported)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    chosen = cpu if cpu is not None else allowed[-1]
    os.sched_setaffinity(0, {chosen})
    return chosen


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (0.0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15 of stat)


def tree_cpu_seconds(root: int | None = None) -> float:
    """User + system CPU seconds of a process tree: `root` (default: this process) and every live descendant,
    each with the CPU of the children it has reaped (the `cutime`/`cstime` of /proc/PID/stat).

    The difference of two readings is what the tree spent in between, whatever processes started, ended or
    were reaped meanwhile (Ray's raylet and workers, a multiprocessing pool, extractor subprocesses), as long
    as a process that ends is reaped inside the tree."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        cpu[pid] = sum(int(value) for value in fields[11:15]) / CLOCK_TICKS  # utime, stime, cutime, cstime
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += cpu.get(pid, 0.0)
        stack.extend(children.get(pid, ()))
    return total


class CpuClock:
    """CPU seconds used by this process, its reaped children, and the live helper processes named by `pids()`."""

    def __init__(self, pids=lambda: ()):
        self.pids = pids

    def now(self) -> dict[int | str, float]:
        # the helpers first: asking whether one is alive may reap it, and a reaped one is in RUSAGE_CHILDREN
        helpers = {pid: process_cpu_seconds(pid) for pid in self.pids()}
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {"self": own.ru_utime + own.ru_stime, "reaped": children.ru_utime + children.ru_stime, **helpers}

    def total(self) -> float:
        """CPU seconds so far of this process, its reaped children and the live helpers (for step accounting)."""
        helpers = sum(process_cpu_seconds(pid) for pid in self.pids())  # first: see now()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime + helpers

    @staticmethod
    def used(before: dict, after: dict) -> tuple[float, float]:
        """(this process, helper processes) CPU seconds between two readings."""
        own = after["self"] - before["self"]
        helpers = after["reaped"] - before["reaped"]
        helpers += sum(value - before.get(key, 0.0) for key, value in after.items() if key not in ("self", "reaped"))
        return own, helpers


@contextmanager
def stopwatch(into: dict, key: str):
    """Add the wall seconds of the block to `into[key]`."""
    started = time.perf_counter()
    try:
        yield
    finally:
        into[key] = into.get(key, 0.0) + time.perf_counter() - started


def profile(function, *args, top: int = 25, **kwargs):
    """Run `function` under cProfile; returns (its result, a text report of the top functions by own time and by
    cumulative time)."""
    profiler = cProfile.Profile()
    result = profiler.runcall(function, *args, **kwargs)
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.strip_dirs()
    text.write(f"--- top {top} by own time (tottime) ---\n")
    stats.sort_stats("tottime").print_stats(top)
    text.write(f"--- top {top} by cumulative time ---\n")
    stats.sort_stats("cumulative").print_stats(top)
    return result, text.getvalue()


MESSAGE_PREFIX = "@@bench "


def send_message(message: dict) -> None:
    """From a side process to its driver (one line on stdout)."""
    print(MESSAGE_PREFIX + json.dumps(message), flush=True)


class SideProcess:
    """A benchmark side in a fresh interpreter (inheriting this process's CPU affinity), driven by commands on its
    stdin and answering with `send_message` lines; anything else it prints passes through."""

    def __init__(self, script: Path, arguments: list[str]):
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
            self.result_path = Path(handle.name)
        self.process = subprocess.Popen([sys.executable, str(script), "--side-output", str(self.result_path),
                                         *arguments], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        bufsize=1)

    def receive(self) -> dict:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(MESSAGE_PREFIX):
                return json.loads(line[len(MESSAGE_PREFIX):])
            sys.stdout.write(line)
        raise RuntimeError(f"benchmark side {self.process.args[4:]} exited with {self.process.wait()}")

    def request(self, command: str) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.receive()

    def finish(self) -> dict:
        """The side's full report (it then exits)."""
        self.request("finish")
        self.process.wait(60)
        return json.loads(self.result_path.read_text())

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.result_path.unlink(missing_ok=True)


def side_failed(what: str, out: Path) -> RuntimeError:
    """The error for a side that failed, with the end of its log (`<out>.log`, where `serve` sends its stderr)."""
    log = out.parent / f"{out.name}.log"
    tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
    return RuntimeError(f"{what} failed; the end of its log:\n{tail}")


def table(rows: list[list[object]], headers: list[str]) -> str:
    """A plain-text table, numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(_is_number(row[i]) for row in rows) for i in range(len(headers))]
    lines = []
    for index, row in enumerate(cells):
        parts = [c.rjust(w) if numeric[i] and index else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(parts).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
