"""Throughput, MFU and the run's log: log lines, `metrics.jsonl`, a progress bar."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger("curate.trainer")

# Dense bf16 tensor-core peaks per accelerator, TFLOP/s (vendor data sheets, without sparsity).
# Matched in order against `torch.cuda.get_device_name()`.
PEAK_BF16_TFLOPS: list[tuple[tuple[str, ...], float, str]] = [
    (("GH200",), 989.4, "GH200"),
    (("H200",), 989.4, "H200"),
    (("H100", "PCIe"), 756.0, "H100 PCIe"),
    (("H100", "NVL"), 835.0, "H100 NVL"),
    (("H100",), 989.4, "H100 SXM"),
    (("H800",), 989.4, "H800"),
    (("B200",), 2250.0, "B200"),
    (("A100",), 312.0, "A100"),
    (("A800",), 312.0, "A800"),
    (("L40S",), 362.1, "L40S"),
    (("L4",), 121.0, "L4"),
    (("A10G",), 70.0, "A10G"),
    (("A10",), 125.0, "A10"),
    (("4090",), 165.2, "RTX 4090"),
]


def peak_flops(device: torch.device, override_tflops: float | None = None) -> tuple[float | None, str]:
    """Peak bf16 FLOP/s of one `device` and a description, or (None, why not)."""
    if override_tflops is not None:
        return override_tflops * 1e12, f"{override_tflops:g} TFLOP/s (given)"
    if device.type != "cuda":
        return None, "not measured (no GPU)"
    name = torch.cuda.get_device_name(device)
    for needles, tflops, label in PEAK_BF16_TFLOPS:
        if all(n in name for n in needles):
            return tflops * 1e12, f"{tflops:g} TFLOP/s ({label} dense bf16)"
    return None, f"not measured (unknown GPU {name!r}: give --peak-tflops)"


def mfu(tokens_per_s: float, flops_per_token: float, peak: float | None, world_size: int) -> float | None:
    """Model FLOPs utilisation: achieved model FLOP/s over the peak of all workers."""
    if peak is None:
        return None
    return tokens_per_s * flops_per_token / (peak * world_size)


class Meter:
    """Wall-clock time of the training steps between two log lines, and the part of it spent
    waiting for data; evaluation and checkpoint time is left out (`paused`)."""

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self.steps, self.wait = 0, 0.0
        self.total_time, self.total_wait, self.total_steps = 0.0, 0.0, 0

    @contextmanager
    def waiting(self) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.wait += time.perf_counter() - start

    @contextmanager
    def paused(self) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self._start += time.perf_counter() - start

    def lap(self) -> tuple[float, int, float]:
        """(seconds, steps, seconds waiting for data) since the last lap, which starts the next."""
        lap = (time.perf_counter() - self._start, self.steps, self.wait)
        self.total_time, self.total_steps = self.total_time + lap[0], self.total_steps + lap[1]
        self.total_wait += lap[2]
        self._start, self.steps, self.wait = time.perf_counter(), 0, 0.0
        return lap


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is now (the progress bar redirects it while it runs)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def ensure_log_handler() -> None:
    """Make the trainer's INFO lines visible when the application configured no logging."""
    if not log.handlers and not logging.getLogger().handlers:
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)


class Reporter:
    """The run's log on the main worker: log lines, one JSON object a line in
    `metrics.jsonl`, and a progress bar when stderr is a terminal. Silent on other workers."""

    def __init__(self, out_dir: Path, total_steps: int, start_step: int, active: bool,
                 progress: bool) -> None:
        self.active = active
        self._file = None
        self._progress: Any = None
        if not active:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        self._file = open(out_dir / "metrics.jsonl", "a", encoding="utf-8")
        if progress and sys.stderr.isatty():
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeRemainingColumn)

            self._progress = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(),
                                      TimeRemainingColumn(), transient=True)
            self._task = self._progress.add_task("train", total=total_steps, completed=start_step)
            self._progress.start()

    def info(self, message: str, *args: Any) -> None:
        if self.active:
            log.info(message, *args)

    def record(self, kind: str, step: int, **values: Any) -> None:
        """Append one metrics record (`kind` is `train`, `eval` or `event`)."""
        if self._file is not None:
            self._file.write(json.dumps(dict(kind=kind, step=step, **values)) + "\n")
            self._file.flush()

    def advance(self, steps: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, steps)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self._file is not None:
            self._file.close()
            self._file = None
