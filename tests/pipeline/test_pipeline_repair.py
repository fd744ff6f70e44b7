"""A rerun verifies before it trusts: a moved or copied output resumes where it now is with no unit recomputed; a
deleted or truncated stage-1 file and a deleted shard are found (`curate verify`) and recomputed by the rerun, with
the same shards as an output that was never damaged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mirror import released
from run_helpers import cli, cli_run


def manifests(output: Path) -> dict[str, str]:
    return {str(p.relative_to(output)): p.read_text() for p in sorted((output / "_work" / "manifests").rglob("*.json"))}


def shards(output: Path) -> dict[str, bytes]:
    return {str(p.relative_to(output)): p.read_bytes() for p in sorted((output / "fin_Latn" / "data").rglob("*.parquet"))}


def copy(reference: Path, target: Path) -> Path:
    shutil.copytree(reference, target, ignore=shutil.ignore_patterns(".curate.lock"))
    return target


def test_a_copied_then_moved_output_resumes_with_no_unit_recomputed(reference, mirror, tmp_path):
    reference_output, _ = reference
    copied = copy(reference_output, tmp_path / "copied")
    assert cli("verify", str(copied)).returncode == 0
    resumed = cli_run(mirror, copied)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    units = len(list((reference_output / "_work" / "manifests" / "stage1").glob("*.json")))
    assert f"all {units} stage-1 units reused" in resumed.stdout, resumed.stdout
    assert manifests(copied) == manifests(reference_output), "no unit ran again"
    assert shards(copied) == shards(reference_output)

    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    shutil.move(copied, moved)
    resumed = cli_run(mirror, moved)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert manifests(moved) == manifests(reference_output), "no unit ran again"
    assert shards(moved) == shards(reference_output)
    verified = cli("verify", str(moved))
    assert verified.returncode == 0 and "every file present and intact" in verified.stdout, verified.stdout


def test_a_deleted_and_a_truncated_stage1_file_are_recomputed_with_their_dependents(reference, mirror, tmp_path):
    reference_output, _ = reference
    output = copy(reference_output, tmp_path / "out")
    stage1 = sorted((output / "_work" / "manifests" / "stage1").glob("*.json"))
    deleted, truncated = (json.loads(p.read_text())["result"]["kept_files"][0] for p in stage1[:2])
    (output / deleted).unlink()
    with open(output / truncated, "r+b") as handle:
        handle.truncate((output / truncated).stat().st_size // 2)

    verified = cli("verify", str(output))
    assert verified.returncode == 1, verified.stdout
    problems = verified.stdout.strip().splitlines()
    assert len(problems) == 2, problems
    assert any(deleted in line and line.endswith(": missing") for line in problems), problems
    assert any(truncated in line and "recorded" in line for line in problems), problems

    before = manifests(reference_output)
    resumed = cli_run(mirror, output)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = manifests(output)
    redone = {name for name in before if name.startswith("_work/manifests/stage1/") and after[name] != before[name]}
    units = len([name for name in before if name.startswith("_work/manifests/stage1/")])
    assert f"{units - len(redone)} of {units} stage-1 units reused" in resumed.stdout, resumed.stdout
    assert redone == {str(p.relative_to(output)) for p in stage1[:2]}, "only the damaged units ran again"
    assert shards(output) == shards(reference_output)
    assert cli("verify", str(output)).returncode == 0


def test_a_deleted_shard_is_rebuilt_byte_identical(reference, mirror, tmp_path):
    reference_output, reference_stats = reference
    output = copy(reference_output, tmp_path / "out")
    shard = sorted((output / "fin_Latn" / "data").rglob("*.parquet"))[-1]
    shard.unlink()

    verified = cli("verify", str(output))
    assert verified.returncode == 1
    assert verified.stdout.strip().splitlines() == [
        f"final/fin_Latn-{shard.name[:5]}: {shard.relative_to(output)}: missing"]

    before = manifests(reference_output)
    resumed = cli_run(mirror, output)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = manifests(output)
    assert {name for name in before if after[name] != before[name]} == {
        f"_work/manifests/final/fin_Latn-{shard.name[:5]}.json"}, "only the shard's bucket ran again"
    assert shards(output) == shards(reference_output)
    stats = json.loads((output / "fin_Latn" / "stats.json").read_text())
    assert stats["released"] == reference_stats["released"]
    assert released(output) == released(reference_output)
