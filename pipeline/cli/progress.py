"""`curate run`'s progress on the terminal: one bar per stage (units, or languages done of all), docs/s and ETA."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

LOG_WIDTH = 120  # columns of a bar written to a file or pipe (a terminal's own width otherwise): no cut counts


class Bars:
    """A `curate.pipeline.execution.executor.Display` drawn with rich on stdout, a line a stage at a time (stderr
    keeps the warnings and the one error line)."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.task = None
        self.started = 0.0

    def begin(self, description: str, total: int, noun: str) -> None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=LOG_WIDTH)
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn(noun), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                                 TextColumn("ETA"), TimeRemainingColumn(), console=console)
        self.task = self.progress.add_task(description, total=total, rate="")
        self.started = time.monotonic()
        self.progress.start()

    def update(self, completed: int, total: int, documents: int) -> None:
        if self.progress is not None:
            rate = documents / max(time.monotonic() - self.started, 1e-9)
            self.progress.update(self.task, completed=completed, total=total,
                                 rate=f"{rate:,.0f} docs/s" if documents else "")

    def end(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
