"""HTML → main text with trafilatura (FineWeb settings), crash-safe.

Each worker process keeps one extractor subprocess. A page that takes more than `timeout_s` of the
subprocess's CPU time (not wall time: output must not depend on the machine's load) gets its subprocess killed and is dropped as `extract.timeout`; a page whose extraction kills the subprocess
(a segfault in lxml, memory blow-up) is dropped as `extract.crashed`. Either way the subprocess is
restarted and the rest of the batch goes on: one poisonous record never costs a unit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cache
from multiprocessing.connection import Connection

import pyarrow as pa

from curate.blocks import faults
from curate.blocks.base import Block, mark_dropped, set_column

EXTRACTORS = ("trafilatura", "resiliparse")
POLL_S = 0.2
WALL_FACTOR = 10  # a page that spends no CPU (blocked) is timed out after this many times the CPU budget


def extract_text(html: str, extractor: str = "trafilatura", favour_precision: bool = True) -> str:
    """The main text of one page ("" when nothing is kept).

    Trafilatura's `deduplicate` is off (datatrove turns it on): its cache of segments seen in the process makes
    a page's text depend on which pages the same worker extracted before, so outputs would change with
    scheduling, resume and `--select`. Repeated boilerplate is left to the line-level filters and dedup."""
    if extractor == "resiliparse":
        from resiliparse.extract.html2text import extract_plain_text

        return extract_plain_text(html, main_content=True, alt_texts=False) or ""
    from trafilatura import extract

    return extract(html, favor_precision=favour_precision, include_comments=False, deduplicate=False) or ""


def _serve(inbox: Connection, outbox: Connection, extractor: str, favour_precision: bool) -> None:
    """The extractor subprocess: receive pages, send texts (or an error string) back, until None arrives."""
    crash_marker = faults.armed("extract_crash")
    hang_marker = faults.armed("extract_hang")
    while True:
        try:
            html = inbox.recv()
        except EOFError:
            return
        if html is None:
            return
        if crash_marker and crash_marker in html:
            faults.fire("extract_crash")
            os._exit(139)
        if hang_marker and hang_marker in html:
            faults.fire("extract_hang")
            while True:
                pass
        try:
            outbox.send(("ok", extract_text(html, extractor, favour_precision)))
        except Exception as error:  # noqa: BLE001 - reported per page as extract.error
            outbox.send(("error", f"{type(error).__name__}: {error}"))


class ExtractorProcess:
    """One extraction subprocess with a per-page timeout; restarted after a timeout or a crash."""

    def __init__(self, extractor: str, favour_precision: bool):
        self.args = (extractor, favour_precision)
        self.process: subprocess.Popen | None = None
        self.outbox: Connection | None = None
        self.inbox: Connection | None = None

    def _start(self) -> None:
        """A fresh interpreter (`python -m blocks.extract`), talking over two pipes: no fork of a threaded worker."""
        to_child_read, to_child_write = os.pipe()
        from_child_read, from_child_write = os.pipe()
        extractor, favour_precision = self.args
        self.process = subprocess.Popen(
            [sys.executable, "-m", "curate.blocks.extract", str(to_child_read), str(from_child_write), extractor,
             "1" if favour_precision else "0"],
            pass_fds=(to_child_read, from_child_write),
            stdin=subprocess.DEVNULL,
        )
        os.close(to_child_read)
        os.close(from_child_write)
        self.outbox = Connection(to_child_write, readable=False)
        self.inbox = Connection(from_child_read, writable=False)

    def _kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
        for connection in (self.outbox, self.inbox):
            if connection is not None:
                connection.close()
        self.process = self.outbox = self.inbox = None

    def _answers_within(self, timeout_s: float) -> bool:
        """Whether the subprocess answers before it has spent `timeout_s` of CPU time on the page (so a loaded
        machine does not time out more pages), or `WALL_FACTOR` times that in wall time (a page blocked on no CPU)."""
        assert self.process is not None and self.inbox is not None
        start_cpu, deadline = cpu_seconds(self.process.pid), time.monotonic() + timeout_s * WALL_FACTOR
        while not self.inbox.poll(min(timeout_s, POLL_S)):
            spent = cpu_seconds(self.process.pid)
            if spent is None or start_cpu is None or spent - start_cpu >= timeout_s or time.monotonic() >= deadline:
                return self.inbox.poll(0)
        return True

    def ensure_started(self) -> None:
        """Start the subprocess unless it runs (it imports the extractor while the caller goes on)."""
        if self.process is None or self.process.poll() is not None:
            self._kill()
            self._start()

    def extract(self, html: str, timeout_s: float) -> tuple[str, str]:
        """("ok", text), ("error", message), ("timeout", "") or ("crashed", "")."""
        self.ensure_started()
        assert self.outbox is not None and self.inbox is not None
        try:
            self.outbox.send(html)
            if not self._answers_within(timeout_s):
                self._kill()
                return "timeout", ""
            return self.inbox.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
            self._kill()
            return "crashed", ""


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process (Linux `/proc`), or None where that cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@cache
def extractor_process(extractor: str, favour_precision: bool) -> ExtractorProcess:
    """The worker process's extractor subprocess (started on first use)."""
    return ExtractorProcess(extractor, favour_precision)


@dataclass
class Extract(Block):
    """Replaces `html` by the extracted `text`; empty, failed, timed-out or crashing pages are dropped."""

    name = "extract"
    reads = ("html",)
    writes = ("text", "drop_reason")
    extractor: str = "trafilatura"
    favour_precision: bool = True
    timeout_s: float = 30.0

    def check(self) -> None:
        if self.extractor not in EXTRACTORS:
            from curate.errors import UserError

            raise UserError(f"unknown extractor {self.extractor!r}: use one of {', '.join(EXTRACTORS)}")
        if self.extractor == "resiliparse":
            try:
                import resiliparse  # noqa: F401
            except ImportError:
                from curate.errors import UserError

                raise UserError("--extractor resiliparse needs `pip install resiliparse`") from None

    def warm(self) -> None:
        self.check()
        extractor_process(self.extractor, self.favour_precision).ensure_started()

    def apply(self, batch: pa.Table) -> pa.Table:
        process = extractor_process(self.extractor, self.favour_precision)
        texts: list[str] = []
        outcomes: list[str] = []
        for html in batch["html"].to_pylist():
            outcome, value = process.extract(html or "", self.timeout_s)
            texts.append(value if outcome == "ok" else "")
            outcomes.append(outcome if outcome != "ok" or value.strip() else "empty")
        batch = set_column(batch, "text", pa.array(texts, pa.string()))
        batch = batch.drop_columns(["html"])
        for outcome in ("empty", "error", "timeout", "crashed"):
            if outcome in outcomes:
                batch = mark_dropped(batch, [o == outcome for o in outcomes], f"{self.name}.{outcome}")
        return batch


if __name__ == "__main__":
    _inbox, _outbox = Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False)
    _serve(_inbox, _outbox, sys.argv[3], sys.argv[4] == "1")
