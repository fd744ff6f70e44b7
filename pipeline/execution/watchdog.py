"""A local Ray that does not outlive its driver.

`ray.init` on a machine starts its processes as the driver's children (GCS, raylet, log monitor), and the
raylet starts agents and workers. When the driver is SIGKILLed, some of them (Ray's dashboard and runtime-env
agents) keep running. `watch(roots)` starts a small process, in a session of its own, that follows the driver
and every descendant of `roots` (once a second); when the driver is gone it SIGKILLs each one it saw, by pid
(the pid's start time checked, so a reused pid is never hit), and ends. `watch` returns once the watchdog has
taken its first look, so a driver killed right after `start_ray` still takes Ray down. It ends by itself once
every root is gone (the driver shut Ray down).

    python -m curate.pipeline.execution.watchdog DRIVER_PID ROOT_PID...
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

POLL_S = 1.0
READY_TIMEOUT_S = 30.0
_started: list[subprocess.Popen] = []  # kept, so that no watchdog is collected (and warned about) while it runs


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == b"Z" else int(fields[19])


def children() -> dict[int, list[int]]:
    """Every process's children, by parent pid."""
    found: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                parent = int(handle.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        found.setdefault(parent, []).append(int(name))
    return found


def descendants(roots: list[int]) -> dict[int, int]:
    """`roots` and all their descendants alive now, each with its start time."""
    tree = children()
    seen: dict[int, int] = {}
    todo = list(roots)
    while todo:
        pid = todo.pop()
        started = start_time(pid)
        if pid in seen or started is None:
            continue
        seen[pid] = started
        todo += tree.get(pid, [])
    return seen


def still(pid: int, started: int) -> bool:
    return start_time(pid) == started


def kill_all(tracked: dict[int, int]) -> None:
    """SIGKILL every tracked process that is still the same process, and whatever descends from them now."""
    for _ in range(3):
        alive = {pid: started for pid, started in tracked.items() if still(pid, started)}
        alive.update(descendants(list(alive)))
        if not alive:
            return
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        tracked = alive
        time.sleep(0.2)


def follow(driver: int, roots: list[int]) -> None:
    driver_started = start_time(driver)
    root_starts = {pid: started for pid in roots if (started := start_time(pid)) is not None}
    tracked = descendants(list(root_starts))
    print("watching", flush=True)  # `watch` returns once Ray's processes of now are tracked
    while True:
        if driver_started is None or not still(driver, driver_started):  # first: Ray's roots die with it
            kill_all(tracked)
            return
        if not [pid for pid, started in root_starts.items() if still(pid, started)]:
            return  # the driver shut Ray down
        tracked.update(descendants(list(root_starts)))
        time.sleep(POLL_S)


def watch(roots: list[int]) -> subprocess.Popen | None:
    """Start the watchdog for this driver and Ray's processes `roots` (Linux only; None elsewhere)."""
    if not roots or not os.path.isdir("/proc"):
        return None
    process = subprocess.Popen([sys.executable, "-m", "curate.pipeline.execution.watchdog", str(os.getpid()),
                                *map(str, roots)], start_new_session=True, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    ready, _, _ = select.select([process.stdout], [], [], READY_TIMEOUT_S)
    if ready:
        process.stdout.readline()
    process.stdout.close()
    _started[:] = [p for p in _started if p.poll() is None] + [process]
    return process


if __name__ == "__main__":
    follow(int(sys.argv[1]), [int(pid) for pid in sys.argv[2:]])
