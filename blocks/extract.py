"""HTML → main text with trafilatura (FineWeb settings), crash-safe.

Each worker process keeps one extractor subprocess. A page that takes longer than `timeout_s` gets its
subprocess killed and is dropped as `extract.timeout`; a page whose extraction kills the subprocess
(a segfault in lxml, memory blow-up) is dropped as `extract.crashed`. Either way the subprocess is
restarted and the rest of the batch goes on: one poisonous record never costs a unit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from multiprocessing.connection import Connection

import pyarrow as pa

from curate.blocks import faults
from curate.blocks.base import Block, mark_dropped, set_column

EXTRACTORS = ("trafilatura", "resiliparse")


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

    def extract(self, html: str, timeout_s: float) -> tuple[str, str]:
        """("ok", text), ("error", message), ("timeout", "") or ("crashed", "")."""
        if self.process is None or self.process.poll() is not None:
            self._kill()
            self._start()
        assert self.outbox is not None and self.inbox is not None
        try:
            self.outbox.send(html)
            if not self.inbox.poll(timeout_s):
                self._kill()
                return "timeout", ""
            return self.inbox.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
            self._kill()
            return "crashed", ""


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
