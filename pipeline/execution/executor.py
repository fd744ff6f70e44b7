"""Running units of work on Ray: local Ray with no setup, or the cluster in `RAY_ADDRESS` / `ray job submit`.

The driver keeps a bounded number of units in flight, reports progress to a `Display` (the CLI draws it; the Python
API's default only logs), and classifies what
fails (`classify`): a worker process that dies on a unit is retried (Ray's task retries), and when it keeps
dying, the unit is bisected so one poisonous input is quarantined and reported while the rest completes; a lost
node, worker or actor is the cluster's fault and the unit is resubmitted; an exception the unit's code raises is a
bug (its traceback is saved under `_work/errors/` and the run stops with one line), never a reason to quarantine
an input; an environment fault (a full disk, a missing model, an unreachable source) stops the run with one line.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import ray
import requests

from curate.blocks import faults
from curate.blocks.model_files import first_line
from curate.errors import UserError
from curate.pipeline.execution.options import Resources
from curate.pipeline.execution.watchdog import children, watch
from curate.pipeline.sources.remote import SourceUnavailable

log = logging.getLogger("curate")

U = TypeVar("U")
R = TypeVar("R")


class Display(Protocol):
    """Where a stage's progress goes: `begin` once, `update` as units finish, `end` once (`pipeline/cli/progress.py`
    draws it; `Quiet` only logs). `noun` says what `completed` and `total` count (units, languages)."""

    def begin(self, description: str, total: int, noun: str) -> None: ...

    def update(self, completed: int, total: int, documents: int) -> None: ...

    def end(self) -> None: ...


class Quiet:
    """The default `Display`: a log line when a stage begins, nothing drawn."""

    def begin(self, description: str, total: int, noun: str) -> None:
        log.info("%s: %d %s", description, total, noun)

    def update(self, completed: int, total: int, documents: int) -> None:
        pass

    def end(self) -> None:
        pass


class _Tally:
    """What a stage has completed: units, or the groups units belong to (`groups_of`: a group, such as a language,
    is complete once every unit holding it is)."""

    def __init__(self, units: list, groups_of: Callable[[Any], Iterable[Hashable]] | None):
        self.groups_of = groups_of
        self.open: dict[Hashable, int] = {}
        for unit in units:
            self._add(unit, 1)
        self.total = len(self.open) if groups_of else len(units)
        self.completed = 0

    def _add(self, unit: Any, step: int) -> int:
        finished = 0
        for group in (self.groups_of(unit) if self.groups_of else ()):
            self.open[group] = self.open.get(group, 0) + step
            if self.open[group] == 0:
                finished += 1
        return finished

    def done(self, unit: Any) -> None:
        self.completed += self._add(unit, -1) if self.groups_of else 1

    def split(self, unit: Any, parts: list) -> None:
        for part in parts:
            self._add(part, 1)
        self._add(unit, -1)  # its groups stay open while its parts run
        if not self.groups_of:
            self.total += len(parts) - 1


def start_ray(num_cpus: int | None = None) -> None:
    """Connect to the cluster in RAY_ADDRESS (set by `ray job submit`; `auto` finds one started with `ray start`
    on this machine), else start a fresh local Ray (never a stray cluster that happens to run here)."""
    if ray.is_initialized():
        return
    os.environ["CURATE_DRIVER_PID"] = str(os.getpid())  # inherited by local workers (fault injection)
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True, runtime_env=_runtime_env_for_cluster())
    else:
        before = set(children().get(os.getpid(), []))
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=True,
                 configure_logging=False)
        watch(sorted(set(children().get(os.getpid(), [])) - before))  # Ray's processes end with this driver


def _runtime_env_for_cluster() -> dict:
    """Ship this driver's curate package to the cluster's workers (Ray's `py_modules`), so every node runs the
    driver's code whether or how curate is installed there; left alone when the job already sets `py_modules`."""
    job_env = json.loads(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR", "{}")).get("runtime_env", {})
    if job_env.get("py_modules"):
        return {}
    return {"py_modules": [str(package_snapshot())]}


def package_snapshot() -> Path:
    """A copy of the importable `curate` package (an editable checkout's root holds more: tests, virtualenvs)."""
    import curate

    root = Path(curate.__file__).parent
    target = Path(tempfile.mkdtemp(prefix="curate-package-")) / "curate"
    target.mkdir()
    for path in root.iterdir():
        if path.is_file() and path.suffix == ".py":
            shutil.copy2(path, target / path.name)
        elif (path / "__init__.py").is_file():
            shutil.copytree(path, target / path.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


@ray.remote
def _call(work: Any, unit: Any) -> Any:
    faults.unit_error_point(str(getattr(unit, "id", unit)))
    return work.run(unit)


def run_units(
    work: Any,
    units: list[U],
    description: str,
    on_result: Callable[[U, R], None],
    split: Callable[[U], list[U] | None] = lambda unit: None,
    on_quarantine: Callable[[U, str], None] | None = None,
    resources: Resources | None = None,
    docs_of: Callable[[R], int] = lambda result: 0,
    in_flight: int | None = None,
    errors_folder: str | None = None,
    display: Display | None = None,
    groups_of: Callable[[U], Iterable[Hashable]] | None = None,
) -> None:
    """Run `work.run(unit)` for every unit on Ray; `on_result` commits each result as it arrives.

    Failures are classified (`classify`): an environment error stops the run with one line; an exception of the
    unit's code stops it with one line and its traceback saved under `errors_folder`; a lost node, worker or actor,
    memory pressure or a lost object resubmits the unit (up to `max_retries` times more than Ray's own retries); a
    unit whose worker process dies by itself (poison) is split (`split`) and its parts run instead, and a unit that
    cannot be split goes to `on_quarantine` with the error, or, without `on_quarantine`, stops the run.

    Progress goes to `display` (default `Quiet`): units completed, or, with `groups_of`, the groups (languages)
    whose every unit completed.
    """
    if not units:
        return
    display = display or Quiet()
    tally = _Tally(units, groups_of)
    resources = resources or Resources()
    remote = _call.options(num_cpus=resources.cpus_per_task, memory=resources.memory_per_task,
                           max_retries=resources.max_retries, retry_exceptions=False)
    work_ref = ray.put(work)
    limit = in_flight or max(2, int(ray.cluster_resources().get("CPU", 2) * 2))
    pending = list(reversed(units))
    running: dict[ray.ObjectRef, tuple[U, int]] = {}
    resubmitted: dict[int, int] = {}
    dead_nodes = _dead_nodes()
    documents = 0
    display.begin(description, tally.total, "languages" if groups_of else "units")
    with _ended(display), _abandoned_on_error(running):
        while pending or running:
            while pending and len(running) < limit:
                unit = pending.pop()
                running[remote.remote(work_ref, unit)] = (unit, len(dead_nodes))
            done, _ = ray.wait(list(running), num_returns=1)
            unit, dead_at_submit = running.pop(done[0])
            try:
                result = ray.get(done[0])
            except ray.exceptions.RayError as error:
                dead_nodes = _dead_nodes()
                kind = classify(error, node_lost=len(dead_nodes) > dead_at_submit)
                name = getattr(unit, "id", unit)
                if kind == ENVIRONMENT:
                    raise environment_error(error) from None
                if kind == CODE:
                    cause = getattr(error, "cause", error)  # a task of several units names the one that raised
                    raise code_error(error, getattr(cause, "curate_where", description),
                                     getattr(cause, "curate_unit", name), errors_folder) from None
                if kind == TRANSIENT:
                    resubmitted[id(unit)] = resubmitted.get(id(unit), 0) + 1
                    if resubmitted[id(unit)] > resources.max_retries:
                        raise UserError(f"unit {name} kept failing on the cluster ({_short(error)}); the committed "
                                        "units are kept: check the nodes' memory and health, then rerun the same "
                                        "command to resume") from None
                    log.warning("unit %s lost to the cluster (%s); resubmitting it", name, type(error).__name__)
                    pending.append(unit)
                    continue
                parts = split(unit)
                message = _short(error)
                if parts:
                    log.warning("unit %s failed (%s); retrying it in %d parts", name, message, len(parts))
                    tally.split(unit, parts)
                    pending.extend(reversed(parts))
                elif on_quarantine is None:
                    raise UserError(f"{description}: unit {name} failed ({message}); the committed units are kept: "
                                    "fix the cause, then rerun the same command to resume") from None
                else:
                    log.warning("quarantined %s: %s", name, message)
                    on_quarantine(unit, message)
                    tally.done(unit)
                    display.update(tally.completed, tally.total, documents)
                continue
            on_result(unit, result)
            documents += docs_of(result)
            tally.done(unit)
            display.update(tally.completed, tally.total, documents)


@contextlib.contextmanager
def _ended(display: Display):
    try:
        yield
    finally:
        display.end()


@contextlib.contextmanager
def _abandoned_on_error(running: dict):
    """When the run stops, cancel the units still in flight and collect their errors (a stopped run says one line,
    not one traceback per unit Ray never handed back)."""
    try:
        yield
    except BaseException:
        refs = list(running)
        for ref in refs:
            ray.cancel(ref)
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=10)
        for ref in refs:
            try:
                ray.get(ref, timeout=0)
            except Exception:  # noqa: BLE001 - the run already stops for another reason
                pass
        raise


POISON, ENVIRONMENT, TRANSIENT, CODE = "poison", "environment", "transient", "code"
# Ray's failures that depend on the cluster, not on the unit: resubmitted, never quarantined.
CLUSTER_ERRORS = (ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError, ray.exceptions.OutOfMemoryError,
                  ray.exceptions.LocalRayletDiedError, ray.exceptions.RaySystemError,
                  ray.exceptions.TaskUnschedulableError, ray.exceptions.ActorDiedError,
                  ray.exceptions.ActorUnavailableError)
# What a unit's own code raises when the node, not the input, is at fault.
ENVIRONMENT_CAUSES = (UserError, ImportError, PermissionError, FileNotFoundError, ConnectionError, TimeoutError,
                      SourceUnavailable, requests.RequestException)


def classify(error: BaseException, node_lost: bool = False) -> str:
    """`environment` (stop the run, quarantine nothing), `transient` (the cluster's: resubmit), `code` (an exception
    of the unit's code: stop with its traceback) or `poison` (the worker process died on it: bisect, quarantine).

    `node_lost`: a node died since the unit was submitted, so a crashed worker says nothing about the unit."""
    cause = getattr(error, "cause", error)
    if isinstance(error, CLUSTER_ERRORS) or isinstance(cause, CLUSTER_ERRORS) \
            or (isinstance(error, ray.exceptions.WorkerCrashedError) and node_lost):
        return TRANSIENT
    if storage_error(error) or isinstance(cause, ENVIRONMENT_CAUSES):
        return ENVIRONMENT
    if isinstance(error, ray.exceptions.RayTaskError) and isinstance(cause, Exception) \
            and not isinstance(cause, ray.exceptions.RayError):
        return CODE
    return POISON


def code_error(error: BaseException, description: str, unit: object, folder: str | None) -> UserError:
    """The one line that stops a run for a bug: what the unit raised, where its saved traceback is."""
    cause = getattr(error, "cause", error)
    saved = ""
    if folder:
        from curate.pipeline.execution.storage import Output

        output = Output(folder)
        path = output.path(f"unit-{type(cause).__name__}.txt")
        try:
            output.write_bytes(path, str(error).encode())
            saved = f"; its traceback is in {path}"
        except OSError:
            pass
    return UserError(f"{description}: unit {unit} failed ({type(cause).__name__}: {first_line(cause)}){saved}; the "
                     "committed units are kept: fix the cause, then rerun the same command to resume")


def environment_error(error: BaseException) -> UserError:
    """The one line that stops a run for an environment error: the cause, the node and the fix."""
    stop = storage_error(error)
    if stop:
        return stop
    cause = getattr(error, "cause", error)
    node = f"node {error.ip}: " if getattr(error, "ip", None) else ""
    if isinstance(cause, UserError):
        return UserError(f"{node}{cause}")
    return UserError(f"{node}{type(cause).__name__}: {first_line(cause)}; fix this node's environment (models, "
                     f"packages, permissions, access to the source and the output), then rerun the same command "
                     f"to resume")


def _dead_nodes() -> set[str]:
    return {n["NodeID"] for n in ray.nodes() if not n.get("Alive")}


STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def storage_error(error: BaseException) -> UserError | None:
    """The one-line error for a full or read-only disk (no fault of the unit: the run stops, committed units
    stay), or None for other errors; `error` may be a Ray task error wrapping the OSError."""
    cause = getattr(error, "cause", error)
    if isinstance(cause, OSError) and cause.errno in STORAGE_ERRNOS:
        where = f" ({cause.filename})" if cause.filename else ""
        return UserError(f"cannot write the output: {cause.strerror}{where}; free space or choose another "
                         "--output, then rerun the same command to resume")
    return None


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[-1][:300] if text else type(error).__name__


def _apply(fn: Callable[[U], R], item: U) -> R:
    return fn(item)


def ray_map(fn: Callable[[U], R], items: Iterable[U], cpus_per_task: float = 1.0) -> list[R]:
    """`map` on Ray tasks, results in order (what `dedup` takes as its `map_fn`); `fn` may be a partial."""
    remote = ray.remote(num_cpus=cpus_per_task, max_retries=3)(_apply)
    fn_ref = ray.put(fn)
    try:
        return ray.get([remote.remote(fn_ref, item) for item in items])
    except ray.exceptions.RayError as error:
        if classify(error) == ENVIRONMENT:
            raise environment_error(error) from None
        name = getattr(getattr(fn, "func", fn), "__name__", "a function")  # a partial names its function
        raise UserError(f"a task of {name} kept failing ({_short(error)}); the committed units are kept: fix the "
                        "cause, then rerun the same command to resume") from None


__all__ = ["Display", "Quiet", "Resources", "classify", "code_error", "environment_error", "run_units", "ray_map",
           "start_ray", "storage_error"]
