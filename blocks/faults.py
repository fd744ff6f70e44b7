"""Named fault-injection points, for tests of crash safety (off unless `CURATE_FAULT` is set).

`CURATE_FAULT=point[:arg]` arms one point. For points that kill the process the argument is the
number of hits before it fires (default 1); `extract_crash` / `extract_hang` fire in the extractor
subprocess on a page whose HTML contains the argument; `disk_full` makes writes of files whose path contains
the argument fail with ENOSPC; `block_error:<block>@<url part>` makes a block raise on the documents whose URL
contains the part; `unit_error` makes the units whose id contains the argument raise. If `CURATE_FAULT_SENTINEL` names a file, the
fault fires only while that file does not exist and creates it when firing, so it fires once per run.
A kill point in a Ray worker kills that worker (Ray retries its task); with `CURATE_FAULT_KILLS=run`
it kills the driver too, as a crash of the whole run would.
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

_hits: dict[str, int] = {}


def armed(point: str) -> str | None:
    """The argument of `point` if it is the armed fault and has not fired yet, else None."""
    spec = os.environ.get("CURATE_FAULT", "")
    name, _, arg = spec.partition(":")
    if name != point:
        return None
    sentinel = os.environ.get("CURATE_FAULT_SENTINEL")
    if sentinel and Path(sentinel).exists():
        return None
    return arg


def fire(point: str) -> None:
    """Record that `point` fired (see `CURATE_FAULT_SENTINEL`)."""
    sentinel = os.environ.get("CURATE_FAULT_SENTINEL")
    if sentinel:
        Path(sentinel).touch()


def disk_full_point(path: str) -> None:
    """Raise ENOSPC when writing a data file, if `disk_full` is armed (its argument: a substring of the path)."""
    arg = armed("disk_full")
    if arg is not None and arg in path:
        fire("disk_full")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


def kill_point(point: str) -> None:
    """Kill this process here if `point` is armed and this is its n-th hit."""
    arg = armed(point)
    if arg is None:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] >= int(arg or 1):
        fire(point)
        driver = os.environ.get("CURATE_DRIVER_PID")
        if os.environ.get("CURATE_FAULT_KILLS") == "run" and driver and int(driver) != os.getpid():
            os.kill(int(driver), signal.SIGKILL)  # the whole run dies, not just this worker
        os._exit(86)


def block_error_point(block: str, urls: list[str]) -> None:
    """Raise in block `block` when `block_error` is armed as `<block>@<url part>` and one of `urls` contains the part
    (an empty part: every document): a block with a bug that some documents trigger."""
    arg = armed("block_error")
    if not arg:
        return
    name, _, part = arg.partition("@")
    if name == block and any(part in url for url in urls):
        raise ValueError(f"fault injected into block {block}")


def unit_error_point(unit_id: str) -> None:
    """Raise in a unit whose id contains the argument of `unit_error`, if armed (a unit that fails by itself)."""
    arg = armed("unit_error")
    if arg and arg in unit_id:
        fire("unit_error")
        raise RuntimeError(f"fault injected into unit {unit_id}")
