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

# Dense tensor-core peaks per accelerator, TFLOP/s, (bf16, TF32) (vendor data sheets, without
# sparsity). Matched in order against `torch.cuda.get_device_name()`.
PEAK_TFLOPS: list[tuple[tuple[str, ...], float, float, str]] = [
    (("GH200",), 989.4, 494.7, "GH200"),
    (("H200",), 989.4, 494.7, "H200"),
    (("H100", "PCIe"), 756.0, 378.0, "H100 PCIe"),
    (("H100", "NVL"), 835.0, 417.5, "H100 NVL"),
    (("H100",), 989.4, 494.7, "H100 SXM"),
    (("H800",), 989.4, 494.7, "H800"),
    (("B200",), 2250.0, 1125.0, "B200"),
    (("A100",), 312.0, 156.0, "A100"),
    (("A800",), 312.0, 156.0, "A800"),
    (("L40S",), 362.1, 183.0, "L40S"),
    (("L4",), 121.0, 60.0, "L4"),
    (("A10G",), 70.0, 35.0, "A10G"),
    (("A10",), 125.0, 62.5, "A10"),
    (("4090",), 165.2, 82.6, "RTX 4090"),
]


def matmul_precision(device: torch.device, bf16: bool) -> str:
    """What the matmuls of a run execute in: `bf16` (autocast), `tf32` (fp32 weights on a CUDA GPU,
    where the trainer allows TF32) or `fp32` (CPU)."""
    if bf16:
        return "bf16"
    return "tf32" if device.type == "cuda" else "fp32"


def peak_flops(device: torch.device, precision: str, override_tflops: float | None = None
               ) -> tuple[float | None, str]:
    """Dense peak FLOP/s of one `device` in `precision` (see `matmul_precision`) and a description,
    or (None, why not)."""
    if override_tflops is not None:
        return override_tflops * 1e12, f"{override_tflops:g} TFLOP/s (given)"
    if device.type != "cuda":
        return None, "not measured (no GPU)"
    name = torch.cuda.get_device_name(device)
    for needles, bf16, tf32, label in PEAK_TFLOPS:
        if all(n in name for n in needles):
            tflops = bf16 if precision == "bf16" else tf32
            return tflops * 1e12, f"{tflops:g} TFLOP/s ({label} dense {precision.upper()})"
    return None, f"not measured (unknown GPU {name!r}: give --peak-tflops)"


def mfu(tokens_per_s: float, flops_per_token: float, peak: float | None, world_size: int) -> float | None:
    """Model FLOPs utilisation: achieved model FLOP/s over the peak of all workers."""
    if peak is None:
        return None
    return tokens_per_s * flops_per_token / (peak * world_size)


class Meter:
    """Wall-clock time of the training steps between two log lines (a lap), and the part of it
    spent waiting for data; evaluation and checkpoint time is left out (`paused`).

    The first lap of a call holds compilation and warm-up: `steady` totals leave it out, `total`
    ones include it.
    """

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self.steps, self.wait, self.laps = 0, 0.0, 0
        self.total = Totals()
        self.steady = Totals()

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
        self.total.add(*lap)
        if self.laps:
            self.steady.add(*lap)
        self.laps += 1
        self._start, self.steps, self.wait = time.perf_counter(), 0, 0.0
        return lap


class Totals:
    """Seconds, steps and data-wait seconds summed over laps."""

    def __init__(self) -> None:
        self.time, self.steps, self.wait = 0.0, 0, 0.0

    def add(self, seconds: float, steps: int, wait: float) -> None:
        self.time, self.steps, self.wait = self.time + seconds, self.steps + steps, self.wait + wait


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
