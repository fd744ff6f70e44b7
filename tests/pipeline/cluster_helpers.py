"""A real multi-node Ray cluster on the test machine, isolated in a network namespace with only loopback.

The head node (no CPUs) runs from the driver's virtualenv; each worker node runs in its own mount namespace where
the driver's virtualenv, `~/.cache` and Ray's temp folder are hidden by tmpfs (each node unpacks its own runtime
environments, as on a separate machine) and a copy of the virtualenv (a bind mount of the same files) sits at
another path. Every process of the cluster is stopped by pid (the pids
in the namespace), never by a command that stops Ray processes by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

GCS_PORT = 6379
DASHBOARD_PORT = 8265
RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",  # multi-node Ray on one machine: only inside the namespace
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_health_check_initial_delay_ms": "1000",  # a dead node is noticed in seconds
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
    "RAY_agent_register_timeout_ms": "300000",  # a loaded 2-core test machine starts agents slowly
}
VENV = Path(sys.prefix)
# Waits (connecting again while the head starts) until the cluster has at least N worker nodes alive.
PROBE = """
import sys, time
import ray
while True:
    try:
        ray.init(address="127.0.0.1:%d", logging_level="ERROR")
        break
    except Exception:
        time.sleep(1)
while sum(1 for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")) < %d:
    time.sleep(0.5)
"""
RAY_START = ["-m", "ray.scripts.scripts", "start", "--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats",
             "--object-store-memory=100000000"]


def _namespace_inode(pid: int, kind: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


def pids_in(kind: str, inode: int) -> list[int]:
    """Every process whose `kind` namespace (net, mnt) is `inode`."""
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and _namespace_inode(int(p), kind) == inode]


def kill_network_namespace(net: int | None, rounds: int) -> None:
    """SIGKILL every process of the network namespace `net` (by pid, never by name), until none is left."""
    for _ in range(rounds):
        pids = [p for p in pids_in("net", net) if p != os.getpid()] if net else []
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)


class Cluster:
    """Head plus worker nodes on 127.0.0.1 of a fresh network namespace; `run` executes a command inside it."""

    def __init__(self, root: Path, token: str):
        self.root = root
        self.temp = Path(f"/tmp/rc-{os.getpid()}-{time.monotonic_ns() % 10**6}")  # short: Ray's socket paths
        self.env = {**os.environ, **RAY_ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
                    "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}"}  # `ray job submit -- curate …`
        self.env.pop("RAY_ADDRESS", None)
        self.holder = subprocess.Popen(["unshare", "-n", "sh", "-c", "ip link set lo up && echo up && exec sleep 86400"],
                                       stdout=subprocess.PIPE, text=True)
        assert self.holder.stdout.readline().strip() == "up"
        self.net = _namespace_inode(self.holder.pid, "net")
        self.workers: dict[str, subprocess.Popen] = {}
        self.nodes_started = 0
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def command(self, args: list[str]) -> list[str]:
        return ["nsenter", "-t", str(self.holder.pid), "-n", "--", *args]

    def run(self, args: list[str], env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(args), env={**self.env, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout)

    def popen(self, args: list[str], env: dict | None = None, log: Path | None = None) -> subprocess.Popen:
        """Start a command in the namespace; its stdout and stderr go to `log`.out / `log`.err (or nowhere)."""
        out = log.with_suffix(".out").open("w") if log else subprocess.DEVNULL
        err = log.with_suffix(".err").open("w") if log else subprocess.DEVNULL
        return subprocess.Popen(self.command(args), env={**self.env, **(env or {})}, stdout=out, stderr=err)

    def _ports(self) -> list[str]:
        """Fixed ports per node (nodes share the namespace's loopback): no node waits for an agent's port file."""
        base = 20_000 + 200 * self.nodes_started
        self.nodes_started += 1
        return [f"--node-manager-port={base}", f"--object-manager-port={base + 1}",
                f"--dashboard-agent-grpc-port={base + 2}", f"--dashboard-agent-listen-port={base + 3}",
                f"--metrics-export-port={base + 4}", f"--runtime-env-agent-port={base + 5}",
                f"--min-worker-port={base + 10}", f"--max-worker-port={base + 199}"]

    def start_head(self) -> None:
        self._start_node("head", lambda: self.command(
            [sys.executable, *RAY_START, *self._ports(), "--head", f"--port={GCS_PORT}", "--num-cpus=0",
             f"--temp-dir={self.temp}", "--dashboard-host=127.0.0.1", f"--dashboard-port={DASHBOARD_PORT}"]),
            self.env, workers=0)

    def start_worker(self, name: str) -> None:
        """A worker node (1 CPU) from a copy of the virtualenv at another path; the original and ~/.cache hidden."""
        copy = self.root / f"venv-{name}"
        copy.mkdir(exist_ok=True)
        home_cache = Path.home() / ".cache"
        env = {k: v for k, v in self.env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "CURATE_LANGUAGE_CONFIGS")}
        env["PATH"] = f"{copy}/bin{os.pathsep}{env['PATH']}"

        def command() -> list[str]:
            script = (f"mount --bind {VENV} {copy} && mount -t tmpfs tmpfs {VENV} && mount -t tmpfs tmpfs "
                      f"{home_cache} && mkdir -p {self.temp} && mount -t tmpfs tmpfs {self.temp} "
                      f"&& exec {copy}/bin/python {' '.join([*RAY_START, *self._ports()])} "
                      f"--address=127.0.0.1:{GCS_PORT} --num-cpus=1")
            return self.command(["unshare", "-m", "sh", "-c", script])

        self._start_node(name, command, env, workers=len(self.workers) + 1)

    def _start_node(self, name: str, command, env: dict, workers: int, attempts: int = 3) -> None:
        """Start a node and wait until the cluster has `workers` worker nodes alive; a node that dies while
        starting (Ray's agents miss their start-up deadline on a loaded machine) is started again."""
        for attempt in range(attempts):
            log = (self.logs / f"{name}.log").open("a")
            process = subprocess.Popen(command(), env=env, stdout=log, stderr=subprocess.STDOUT)
            if name == "head":
                self.head = process
            else:
                self.workers[name] = process
            probe = self.popen([sys.executable, "-c", PROBE % (GCS_PORT, workers)], env={"PYTHONPATH": ""})
            deadline = time.monotonic() + 300
            while probe.poll() is None and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.5)
            if probe.poll() == 0:
                return
            probe.kill()
            probe.wait()
            if process.poll() is None:
                break  # alive but never joined: give up
        raise AssertionError(f"node {name} did not come up\n" + self.log_tails())

    def wait_for_nodes(self, count: int, timeout: float = 300) -> None:
        """Until `count` worker nodes (with CPUs) are alive."""
        result = self.run([sys.executable, "-c", PROBE % (GCS_PORT, count)], env={"PYTHONPATH": ""},
                          timeout=timeout)
        assert result.returncode == 0, result.stderr[-2000:] + self.log_tails()

    def kill_worker(self, name: str) -> int:
        """SIGKILL a worker node's raylet and workers (every process of its mount namespace); returns how many."""
        mnt = _namespace_inode(self.workers[name].pid, "mnt")
        assert mnt is not None and mnt != _namespace_inode(os.getpid(), "mnt")
        pids = pids_in("mnt", mnt)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.workers.pop(name).wait(30)
        return len(pids)

    def log_tails(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in sorted(self.logs.glob("*.log")))

    def stop(self) -> None:
        """SIGKILL every process of the namespace (head, workers, drivers, the holder)."""
        kill_network_namespace(self.net, rounds=3)
        for process in [self.holder, getattr(self, "head", None), *self.workers.values()]:
            if process is not None:
                process.wait(30)
        subprocess.run(["rm", "-rf", str(self.temp)], check=False)
