"""The stage driver's pieces that need no Ray: how bucket units share tasks, and what progress counts."""

from __future__ import annotations

from curate.pipeline.execution.driver import BucketStage, Task, Tasks, group
from curate.pipeline.execution.executor import _Tally
from curate.pipeline.execution.stages import BucketUnit

MB = 1 << 20


def _units(sizes: dict[str, list[int]]) -> tuple[list[BucketUnit], dict[str, int]]:
    units = [BucketUnit(f"{code}-{b:05d}", code, b, (), len(each)) for code, each in sizes.items()
             for b in range(len(each))]
    return units, {u.id: sizes[u.language][u.bucket] for u in units}


def test_small_units_share_a_task_and_a_large_one_runs_alone():
    units, size = _units({"big": [100 * MB, 90 * MB], **{f"l{i:03d}": [MB] for i in range(200)}})
    tasks = group(units, lambda u: size[u.id], budget=64 * MB)
    assert [len(t) for t in tasks] == [1, 1, 64, 64, 64, 8]
    assert [u for t in tasks for u in t] == units, "every unit once, in order"
    assert all(sum(size[u.id] for u in t) <= 64 * MB for t in tasks if len(t) > 1)


def test_a_bucket_stage_keeps_a_manifest_per_language_and_bucket():
    stage = BucketStage("final", works={"a": object(), "b": object()}, buckets={"a": 2, "b": 1},
                        inputs=lambda code, bucket: (f"{code}{bucket}.parquet",), size=lambda unit: MB,
                        upstream={"a": ["x"], "b": ["y"]}, settings={"a": [], "b": []})
    units = stage.units()
    assert [u.id for u in units] == ["a-00000", "a-00001", "b-00000"] and units[1].inputs == ("a1.parquet",)
    tasks = stage.tasks(units)
    assert len(tasks) == 1 and tasks[0].id == "final-task-00000" and [u.id for u, _ in tasks[0].parts] == [
        "a-00000", "a-00001", "b-00000"]
    assert stage.tasks(units[:1])[0].id == "a-00000", "a unit alone keeps its own name"
    assert stage.fingerprint(units[0]) != stage.fingerprint(units[2])
    results = ["r0", "r1", "r2"]
    assert [(u.id, r) for u, r in stage.results(tasks[0], results)] == [("a-00000", "r0"), ("a-00001", "r1"),
                                                                       ("b-00000", "r2")]


class _Raises:
    def run(self, unit):
        raise ValueError("broken")


def test_a_task_names_the_unit_that_raised():
    unit = BucketUnit("fin_Latn-00002", "fin_Latn", 2, ())
    try:
        Tasks("stage3").run(Task("stage3-task-00000", ((unit, _Raises()),)))
    except ValueError as error:
        assert (error.curate_unit, error.curate_where) == ("fin_Latn-00002", "stage3 fin_Latn")
    else:
        raise AssertionError("the task did not raise")


def test_progress_counts_languages_done_once_all_their_tasks_are():
    tasks = [("a", "b"), ("a",), ("c",)]
    tally = _Tally(tasks, groups_of=lambda task: task)
    assert (tally.completed, tally.total) == (0, 3)
    tally.done(tasks[1])
    assert tally.completed == 0, "a still has a task running"
    tally.done(tasks[0])
    assert tally.completed == 2
    tally.done(tasks[2])
    assert (tally.completed, tally.total) == (3, 3)


def test_progress_counts_units_and_their_parts_after_a_split():
    tally = _Tally(["u", "v"], groups_of=None)
    tally.split("u", ["u~a", "u~b"])
    assert tally.total == 3
    for unit in ("u~a", "u~b", "v"):
        tally.done(unit)
    assert (tally.completed, tally.total) == (3, 3)
