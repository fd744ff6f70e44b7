"""A local Ray ends with its driver, even a SIGKILLed one (`pipeline/execution/watchdog.py`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from curate.pipeline.execution.watchdog import descendants, still

DRIVER = """
import time
from curate.pipeline.execution.executor import start_ray
start_ray(1)
print("up", flush=True)
time.sleep(900)
"""
AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_a_sigkilled_driver_takes_its_local_ray_with_it():
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True, env=env)
    tracked: dict[int, int] = {}
    try:
        assert driver.stdout.readline().strip() == "up"
        deadline = time.monotonic() + 180
        while True:  # until both of Ray's agents are up (they start a while after ray.init returns)
            tracked.update(descendants([driver.pid]))
            names = [command_line(pid) for pid in tracked if still(pid, tracked[pid])]
            if all(any(name.startswith(agent) for name in names) for agent in AGENTS):
                break
            assert time.monotonic() < deadline, names
            time.sleep(0.5)
        assert any("curate.pipeline.execution.watchdog" in name for name in names), names
        tracked.pop(driver.pid)
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
        deadline = time.monotonic() + 60
        while [pid for pid, started in tracked.items() if still(pid, started)] and time.monotonic() < deadline:
            time.sleep(0.5)
        left = {pid: command_line(pid) for pid, started in tracked.items() if still(pid, started)}
        assert left == {}, "Ray's processes outlived their driver"
    finally:
        for pid, started in tracked.items():
            if still(pid, started):
                os.kill(pid, signal.SIGKILL)
        if driver.poll() is None:
            driver.kill()
