"""The stage protocol and the one loop that runs a stage.

A stage plans its units, gives each a fingerprint and runs a unit with `work.run(unit) -> result`. `drive` reuses
every unit whose committed manifest matches its fingerprint (`Manifests.committed`), runs the rest on Ray
(`run_units`, as the stage groups them into tasks) and commits each unit's result as its task ends; it returns
the committed manifests and the stage's counts (`StageCounts`). `BucketStage` is stage 3 and the final stage of
every language at once: a (language, bucket) unit keeps its own manifest, so a language resumes on its own, but
small units of any language share a task (`group`) until `TASK_BYTES`, so a run over many small languages costs
about what its largest ones do.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import ray
from curate.blocks import faults
from curate.pipeline.execution.executor import Display, Quiet, Resources, run_units
from curate.pipeline.execution.provenance import code_version, fingerprint
from curate.pipeline.execution.stage1 import Unit, UnitResult, merge_results
from curate.pipeline.execution.stages import BucketResult, BucketUnit
from curate.pipeline.execution.storage import Manifests, Output

log = logging.getLogger("curate")

U = TypeVar("U")
R = TypeVar("R")

# Bytes of input below which units share a task: a task's fixed costs (a worker's dispatch, its blocks' model
# loads) then outweigh its work. A unit above it runs alone.
TASK_BYTES = 64 << 20


@dataclass
class StageCounts:
    """A stage's units: committed by an earlier run and reused, in all, and the Ray tasks this run ran them in."""

    reused: int = 0
    total: int = 0
    tasks: int = 0
    seconds: float = 0.0


@dataclass
class RunStats:
    """What `run` returns: each language's stats (its `stats.json`), the languages left out, the run's wall time
    and each stage's counts."""

    languages: dict[str, dict]
    skipped: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    stages: dict[str, StageCounts] = field(default_factory=dict)

    @property
    def units_reused(self) -> int:
        return sum(s.reused for s in self.stages.values())


class Stage(Protocol[U, R]):
    """What `drive` runs: `units()`, a `fingerprint(unit)` each, and `work.run(task) -> result`, where a task is
    what `tasks` makes of the units to do and `results` says which (unit, result) pairs a task's result commits."""

    name: str  # its manifests' folder: _work/manifests/<name>/
    description: str
    work: Any

    def units(self) -> list[U]: ...

    def fingerprint(self, unit: U) -> str: ...

    def reusable(self, manifest: dict) -> bool: ...

    def tasks(self, todo: list[U]) -> list: ...

    def results(self, task: Any, result: Any) -> list[tuple[U, R]]: ...


@dataclass
class StageRun(Generic[U]):
    done: dict[str, dict]  # unit id → its manifest (reused ones marked "reused")
    counts: StageCounts


def drive(stage: Stage, manifests: Manifests, resources: Resources, display: Display | None = None,
          errors_folder: str | None = None, split: Callable | None = None,
          on_quarantine: Callable[[Any, str], list[tuple[Any, Any]]] | None = None,
          extra: Callable[[Any], dict] = lambda unit: {}, on_commit: Callable[[Any, Any], None] = lambda u, r: None,
          groups_of: Callable[[Any], Iterable[Hashable]] | None = None) -> StageRun:
    """Plan, reuse, run and commit one stage (see the module's docstring). `split`/`on_quarantine` are
    `run_units`'s (the latter returns the pairs to commit); `extra` adds fields to a unit's manifest."""
    started = time.monotonic()
    units = stage.units()
    prints = {unit.id: stage.fingerprint(unit) for unit in units}
    done: dict[str, dict] = {}
    todo = []
    for unit in units:
        manifest = manifests.committed(stage.name, unit.id, prints[unit.id])
        if manifest and stage.reusable(manifest):
            done[unit.id] = {**manifest, "reused": True}  # in memory only: counted in the stats
        else:
            todo.append(unit)
    if done:
        log.info("%s: %d of %d units already done", stage.name, len(done), len(units))
    tasks = stage.tasks(todo)

    def commit(pairs: list[tuple[Any, Any]]) -> None:
        for unit, result in pairs:
            done[unit.id] = manifests.commit(stage.name, unit.id, prints[unit.id], result, **extra(unit))
            on_commit(unit, result)

    run_units(stage.work, tasks, stage.description, lambda task, result: commit(stage.results(task, result)),
              split or (lambda task: None),
              (lambda task, error: commit(on_quarantine(task, error))) if on_quarantine else None,
              resources, docs_of=_documents, errors_folder=errors_folder, display=display, groups_of=groups_of)
    counts = StageCounts(len(units) - len(todo), len(units), len(tasks), round(time.monotonic() - started, 2))
    return StageRun({unit.id: done[unit.id] for unit in units}, counts)


def _documents(result: Any) -> int:
    results = result if isinstance(result, list) else [result]
    return sum(getattr(r, "documents_read", 0) for r in results)


def in_driver(fn: Callable[[U], R], items: list[U], description: str, threads: int,
              display: Display | None = None) -> list[R]:
    """`fn` over `items` in the driver's threads, results in order (a step that fans out on its own, such as a
    language's dedup); progress counts the items done."""
    display = display or Quiet()
    display.begin(description, len(items), "languages")
    pool = ThreadPoolExecutor(max(1, min(threads, len(items))))
    try:
        futures = [pool.submit(fn, item) for item in items]
        for number, future in enumerate(futures, 1):
            future.result()
            display.update(number, len(items), 0)
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # a failure stops the languages not started
        display.end()


# --- stage 1: units of WARCs, every language at once ------------------------------------------------------------


@dataclass
class Stage1:
    """Stage 1 as a `Stage`: a unit whose worker keeps dying is bisected (`split`), a part that cannot be split
    is quarantined (`quarantined`), and a unit that ran in parts commits once all of them reported (`results`).
    A committed unit is redone while it quarantined files (unless `skip_quarantined`) or missed inputs."""

    work: Any
    planned: list[Unit]
    settings: list
    skip_quarantined: bool = False
    name: str = "stage1"
    description: str = "stage 1: read, extract, identify"
    partial: dict[str, list[UnitResult]] = field(default_factory=dict)
    parents: dict[str, Unit] = field(default_factory=dict)

    def units(self) -> list[Unit]:
        return self.planned

    def fingerprint(self, unit: Unit) -> str:
        return fingerprint(self.settings, [f.canonical for f in unit.files])

    def reusable(self, manifest: dict) -> bool:
        result = manifest["result"]
        return (self.skip_quarantined or not result["quarantined"]) and not result.get("missing")

    def tasks(self, todo: list[Unit]) -> list[Unit]:
        self.parents = {unit.id: unit for unit in todo}
        return todo

    def results(self, task: Unit, result: UnitResult) -> list[tuple[Unit, UnitResult]]:
        parent = task.id.split("~")[0]
        if task.id == parent:
            return [(task, result)]
        self.partial.setdefault(parent, []).append(result)
        return self._merged(parent)

    def _merged(self, parent: str) -> list[tuple[Unit, UnitResult]]:
        results = self.partial.get(parent, [])
        if sum(len(r.files) for r in results) < len(self.parents[parent].files):
            return []
        return [(self.parents[parent], merge_results(parent, results))]

    def split(self, unit: Unit) -> list[Unit] | None:
        if len(unit.files) < 2:
            return None
        middle = len(unit.files) // 2
        return [Unit(f"{unit.id}~a", unit.files[:middle]), Unit(f"{unit.id}~b", unit.files[middle:])]

    def quarantined(self, unit: Unit, error: str) -> list[tuple[Unit, UnitResult]]:
        part = UnitResult(unit.id, files=[f.canonical for f in unit.files],
                          quarantined=[f"{f.canonical}: {error}" for f in unit.files])
        self.partial.setdefault(unit.id.split("~")[0], []).append(part)
        return self._merged(unit.id.split("~")[0])


def run_stage1(stage: Stage1, manifests: Manifests, resources: Resources, display: Display | None,
               errors_folder: str) -> StageRun:
    """`drive` stage 1: each committed unit lists its WARCs and records its quarantined files."""
    return drive(stage, manifests, resources, display, errors_folder, split=stage.split,
                 on_quarantine=stage.quarantined, extra=lambda unit: {"files": [f.canonical for f in unit.files]},
                 on_commit=lambda unit, result: manifests.record_quarantine(unit.id, result.quarantined))


# --- stage 3 and the final stage: every language's buckets at once ---------------------------------------------


@dataclass(frozen=True)
class Task:
    """Units of one or more languages that run in one Ray task, each with its language's work."""

    id: str
    parts: tuple[tuple[BucketUnit, Any], ...]


@dataclass
class Tasks:
    """Runs a `Task`: each part with its own work (or a reference to it in Ray's object store), in turn; an
    exception names the unit and stage that raised."""

    stage: str

    def run(self, task: Task) -> list[BucketResult]:
        results = []
        for unit, work in task.parts:
            try:
                faults.unit_error_point(unit.id)
                results.append((ray.get(work) if isinstance(work, ray.ObjectRef) else work).run(unit))
            except Exception as error:
                error.curate_unit = unit.id  # `run_units` names this unit, not the task, in its one line
                error.curate_where = f"{self.stage} {unit.language}"
                raise
        return results


def group(units: list[BucketUnit], size: Callable[[BucketUnit], int], budget: int = TASK_BYTES) -> list[list]:
    """Units in tasks: one at or above `budget` bytes alone, smaller ones together (in order) while their sum stays
    under it."""
    tasks: list[list] = []
    shared: list = []
    shared_bytes = 0
    for unit in units:
        bytes_ = size(unit)
        if bytes_ >= budget:
            tasks.append([unit])
            continue
        if shared and shared_bytes + bytes_ > budget:
            tasks.append(shared)
            shared, shared_bytes = [], 0
        shared.append(unit)
        shared_bytes += bytes_
    if shared:
        tasks.append(shared)
    return tasks


@dataclass
class BucketStage:
    """Stage 3 or the final stage over the buckets of every language: `works[code]` runs a bucket of `code`,
    `buckets[code]` is its bucket count, `inputs(code, bucket)` the files a bucket reads, `size(unit)` its bytes
    (for grouping), and `upstream[code]`, `settings[code]` what its fingerprint chains to."""

    name: str
    works: dict[str, Any]
    buckets: dict[str, int]
    inputs: Callable[[str, int], tuple[str, ...]]
    size: Callable[[BucketUnit], int]
    upstream: dict[str, list]
    settings: dict[str, list]
    budget: int = TASK_BYTES

    @property
    def description(self) -> str:
        return {"stage3": "stage 3: dedup, filter, score", "final": "final: shards"}.get(self.name, self.name)

    @property
    def work(self) -> Tasks:
        return Tasks(self.name)

    def units(self) -> list[BucketUnit]:
        return [BucketUnit(f"{code}-{bucket:05d}", code, bucket, self.inputs(code, bucket), count)
                for code, count in self.buckets.items() for bucket in range(count)]

    def fingerprint(self, unit: BucketUnit) -> str:
        code, work = unit.language, self.works[unit.language]
        return fingerprint(code_version(*modules(work)), self.name, code, unit.bucket, unit.num_buckets,
                           self.upstream[code], self.settings[code])

    def reusable(self, manifest: dict) -> bool:
        return True

    def tasks(self, todo: list[BucketUnit]) -> list[Task]:
        """The units to do in tasks (`group`); with Ray running, each language's work is put in its object store
        once and the tasks hold references (a language's buckets share one copy, as before grouping)."""
        works = {code: ray.put(self.works[code]) if ray.is_initialized() else self.works[code]
                 for code in dict.fromkeys(u.language for u in todo)}
        tasks = []
        for number, units in enumerate(group(todo, self.size, self.budget)):
            name = units[0].id if len(units) == 1 else f"{self.name}-task-{number:05d}"
            tasks.append(Task(name, tuple((u, works[u.language]) for u in units)))
        return tasks

    def results(self, task: Task, results: list[BucketResult]) -> list[tuple[BucketUnit, BucketResult]]:
        return [(unit, result) for (unit, _), result in zip(task.parts, results)]

    def per_language(self, done: dict[str, dict]) -> dict[str, dict[int, dict]]:
        """The committed manifests by language and bucket."""
        found: dict[str, dict[int, dict]] = {code: {} for code in self.buckets}
        for unit in self.units():
            found[unit.language][unit.bucket] = done[unit.id]
        return found

    def remove_wider(self, output: Output) -> None:
        """Delete the manifests of buckets beyond a language's count (an earlier, wider bucketing)."""
        for path in output.fs.glob(output.path("_work", "manifests", self.name, "*.json")):
            match = _BUCKET_MANIFEST.search(path)
            if match and match[1] in self.buckets and int(match[2]) >= self.buckets[match[1]]:
                output.fs.rm(path)


_BUCKET_MANIFEST = re.compile(r"([^/]+)-(\d{5})\.json$")


def run_bucket_stage(stage: BucketStage, manifests: Manifests, resources: Resources, display: Display | None,
                     errors_folder: str) -> tuple[dict[str, dict[int, dict]], StageCounts]:
    """`drive` a bucket stage, progress in languages done; returns the manifests per language and bucket."""
    ran = drive(stage, manifests, resources, display, errors_folder, groups_of=lambda task: {
        u.language for u, _ in task.parts})
    stage.remove_wider(manifests.output)
    return stage.per_language(ran.done), ran.counts


def modules(work: Any) -> list[str]:
    """The modules a stage's work and its blocks are defined in (what its code digest starts from)."""
    inner = getattr(work, "work", work)
    return [type(inner).__module__, *sorted({type(b).__module__ for b in getattr(work, "blocks", [])})]


__all__ = ["BucketStage", "RunStats", "Stage", "Stage1", "StageCounts", "StageRun", "Task", "Tasks", "TASK_BYTES",
           "drive", "group", "in_driver", "modules", "run_bucket_stage", "run_stage1"]
