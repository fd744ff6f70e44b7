"""Units sized for the workers: `--files-per-unit` (and the index's records per unit) is a ceiling; while the
input allows, a plan has `UNITS_PER_SLOT` units per worker slot, so no run ends with one unit running alone."""

from __future__ import annotations

from pathlib import Path

from run_helpers import run_options

from curate.pipeline.execution.run import UNITS_PER_SLOT, make_plan, unit_size, worker_slots
from curate.pipeline.execution.executor import Resources


def test_unit_size_fills_the_slots_within_the_ceiling():
    assert UNITS_PER_SLOT == 4
    assert unit_size(24, ceiling=8, slots=2) == 3  # 8 units for 2 slots, not 3 units of 8
    assert unit_size(1000, ceiling=8, slots=2) == 8  # plenty of input: the ceiling
    assert unit_size(5, ceiling=8, slots=16) == 1  # fewer files than slots: one file a unit
    assert unit_size(20_000, ceiling=20_000, slots=2, floor=1_000) == 2_500
    assert unit_size(3_000, ceiling=20_000, slots=2, floor=1_000) == 1_000  # never below the floor
    assert unit_size(3_000, ceiling=30, slots=2, floor=1_000) == 30  # nor above the ceiling


def test_worker_slots_count_cpus_per_task(mirror):
    assert worker_slots(run_options(mirror, Path("unused"), num_cpus=8)) == 8
    two_each = run_options(mirror, Path("unused"), num_cpus=8, resources=Resources(cpus_per_task=2))
    assert worker_slots(two_each) == 4


def test_plan_units_per_slot(mirror):
    """The mirror's 2024-* crawls: 3 and 2 WARCs."""
    one_slot = make_plan(run_options(mirror, Path("unused"), files_per_unit=8, num_cpus=1))
    assert sorted(len(u.files) for u in one_slot.units) == [1, 2, 2]  # 4 units wanted: 2 files a unit
    two_slots = make_plan(run_options(mirror, Path("unused"), files_per_unit=8, num_cpus=2))
    assert [len(u.files) for u in two_slots.units] == [1] * 5  # 8 units wanted: one file a unit
    assert two_slots.units == make_plan(run_options(mirror, Path("unused"), files_per_unit=1, num_cpus=1)).units
    assert sorted(f.path for f in one_slot.files) == sorted(f.path for f in two_slots.files)


def test_an_output_keeps_its_units_on_a_machine_of_another_size(mirror, tmp_path):
    """A run records its worker slots under the output once its checks passed; a resume with other CPUs makes the
    same units (so they are reused, not recomputed), and a plan alone (a dry run) records nothing."""
    options = run_options(mirror, tmp_path / "out", files_per_unit=8, num_cpus=1)
    first = make_plan(options, fill_cache=True)
    assert not (tmp_path / "out" / "_work" / "plan.json").exists()
    assert worker_slots(options, remember=True) == 1  # what `run` records before any work
    resumed = make_plan(run_options(mirror, tmp_path / "out", files_per_unit=8, num_cpus=2), fill_cache=True)
    assert resumed.units == first.units
    assert sorted(len(u.files) for u in first.units) == [1, 2, 2]
