"""`curate run` through failures: a full disk, the run killed at each point, a failing bucket, a worker killed
mid-write; every rerun resumes and the output equals a run that never failed."""

from __future__ import annotations

import re

from mirror import released
from run_helpers import cli_run


# One output through every failure in turn, each rerun resuming what the earlier ones left; the last completes.
# during_final_write:1: a bucket writes one shard (crawls mixed), and a worker process may run only one bucket.
KILL_POINTS = ("after_unit_commit:2", "mid_unit_write:1", "during_dedup:2")


def test_failures_at_every_point_then_a_rerun_give_identical_output(reference, mirror, tmp_path):
    reference_output, _ = reference
    full = cli_run(mirror, tmp_path, env={"CURATE_FAULT": "disk_full:_work/stage1/"})
    assert full.returncode == 2, full.stderr[-3000:]
    *warnings, line = full.stderr.strip().splitlines()  # the selection line, then a warning per crawl (the mirror has no robots.txt files)
    assert line.startswith("error: cannot write the output: No space left on device"), full.stderr[-3000:]
    assert all(w.startswith(("selection: ", "WARNING robots.txt: ")) for w in warnings), full.stderr[-3000:]
    assert "Traceback" not in full.stderr
    assert not list((tmp_path / "_work" / "manifests").rglob("*.json")), "no unit committed"
    assert not (tmp_path / ".curate.lock").exists()

    for point in KILL_POINTS:
        killed = cli_run(mirror, tmp_path, env={"CURATE_FAULT": point, "CURATE_FAULT_KILLS": "run"})
        assert killed.returncode != 0, f"the run was not killed at {point}"
        assert not (tmp_path / "fin_Latn" / "stats.json").exists()

    failed = cli_run(mirror, tmp_path, env={"CURATE_FAULT": "unit_error:fin_Latn-00002"})
    assert failed.returncode == 2, failed.stderr[-3000:]
    line = failed.stderr.strip().splitlines()[-1]
    assert line.startswith("error: stage3 fin_Latn: unit fin_Latn-00002 failed (RuntimeError: fault injected"), line
    assert "Traceback" not in failed.stderr and not (tmp_path / "fin_Latn" / "stats.json").exists()
    assert not (tmp_path / "fin_Latn" / "data").exists(), "no release with a bucket missing"

    killed = cli_run(mirror, tmp_path, env={"CURATE_FAULT": "during_final_write:1", "CURATE_FAULT_KILLS": "run"})
    assert killed.returncode != 0, "the run was not killed while writing the shards"

    resumed = cli_run(mirror, tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    reused = re.search(r"all \d+ stage-1 units reused; (\d+) of (\d+) units reused\)", resumed.stdout)  # no pages/s
    assert reused and 0 < int(reused[1]) < int(reused[2]), resumed.stdout
    assert released(tmp_path) == released(reference_output)


def test_a_worker_killed_mid_write_is_retried_by_ray(reference, mirror, tmp_path):
    reference_output, _ = reference
    sentinel = tmp_path / "fired"
    result = cli_run(mirror, tmp_path / "out",
                     env={"CURATE_FAULT": "mid_unit_write", "CURATE_FAULT_SENTINEL": str(sentinel)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert sentinel.exists(), "the fault fired"
    assert released(tmp_path / "out") == released(reference_output)
