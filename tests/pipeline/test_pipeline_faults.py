"""Failures classified by what they are, end to end through the CLI: a block that raises (a code fault: the document
counted, nothing quarantined; past the budget the run stops), missing and empty inputs (counted, named, exit 3, a
rerun retries them), an unreachable source (one line at once, naming the host), a full disk (the output named, no
temporary file left)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mirror import released
from run_helpers import cli, cli_run

from curate.pipeline.sources.remote import RetryPolicy, SourceUnavailable, open_http

BLOCK = "filter_statistics"  # a stage-1 block of fin_Latn


def temporaries(output: Path) -> list[Path]:
    return [p for p in output.rglob("*") if ".tmp-" in p.name]


def test_a_block_raising_on_one_document_costs_only_that_document(reference, mirror, tmp_path):
    reference_output, _ = reference
    documents = released(reference_output)
    victim = next(r for r in documents.values() if r.get("minhash_cluster_size", 1) == 1)
    result = cli_run(mirror, tmp_path, env={"CURATE_FAULT": f"block_error:{BLOCK}@{victim['url']}"})
    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads((tmp_path / "fin_Latn" / "stats.json").read_text())
    assert stats["stage1"][f"error.{BLOCK}"] == 1
    assert stats["quarantined"] == [] and not (tmp_path / "_work" / "quarantine").exists()
    assert set(released(tmp_path)) == set(documents) - {victim["id"]}, "the rest of its WARC is released"
    saved = (tmp_path / "_work" / "errors" / f"{BLOCK}-ValueError.txt").read_text()
    assert "Traceback" in saved and f"fault injected into block {BLOCK}" in saved


def test_a_block_raising_on_every_document_stops_the_run_within_the_budget(mirror, tmp_path):
    result = cli_run(mirror, tmp_path, "--max-errors", "5", env={"CURATE_FAULT": f"block_error:{BLOCK}@"})
    assert result.returncode == 2, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert f"block {BLOCK} raised ValueError on 6 documents, more than --max-errors 5" in line, line
    assert str(tmp_path / "_work" / "errors" / f"{BLOCK}-ValueError.txt") in line, line
    assert "Traceback" not in result.stderr and "retrying it in" not in result.stderr, "no bisection"
    assert not (tmp_path / "_work" / "quarantine").exists()
    assert not list((tmp_path / "_work" / "manifests").rglob("*.json"))


def test_missing_and_empty_inputs_are_counted_named_and_retried_by_the_rerun(reference, mirror, tmp_path):
    reference_output, _ = reference
    source = tmp_path / "mirror"
    shutil.copytree(mirror.root, source)
    warcs = sorted((source / "crawl-data").glob("CC-MAIN-2024-*/segments/*/warc/*.warc.gz"))
    gone, empty = warcs[0], warcs[1]
    saved = {gone: gone.read_bytes(), empty: empty.read_bytes()}
    gone.unlink()
    empty.write_bytes(b"")
    output = tmp_path / "out"
    args = ["run", "--lang", "fin", "--snapshots", "2024-*", "--source", str(source), "--lid", "ft176", "--output",
            str(output), "--files-per-unit", "2", "--buckets", "4", "--cpus", "2"]

    result = cli(*args)
    assert result.returncode == 3, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: 2 input file(s) missing or empty ("), line
    assert "rerun the same command to retry them" in line and "Traceback" not in result.stderr
    names = {path: "s3://commoncrawl/" + str(path.relative_to(source)) for path in (gone, empty)}
    stats = json.loads((output / "fin_Latn" / "stats.json").read_text())
    assert stats["missing"] == sorted([f"{names[gone]}: missing", f"{names[empty]}: empty"])
    assert stats["shared"]["input.missing"] == 1 and stats["shared"]["input.empty"] == 1
    assert names[gone] in (output / "report.html").read_text()
    expected = {i for i, r in released(reference_output).items() if r["file_path"] not in names.values()}
    assert expected and expected <= set(released(output)), "everything else is released"

    for path, data in saved.items():
        path.write_bytes(data)
    retried = cli(*args)
    assert retried.returncode == 0, retried.stderr[-3000:]
    assert set(released(output)) == set(released(reference_output))
    assert json.loads((output / "fin_Latn" / "stats.json").read_text())["missing"] == []


def test_an_unresolvable_source_is_one_line_naming_its_host_without_retries(tmp_path):
    stream = open_http("https://nonexistent.invalid/crawl-data/x.warc.gz", RetryPolicy(attempts=8))
    with pytest.raises(SourceUnavailable, match=r"^cannot reach nonexistent\.invalid: its name does not resolve"):
        stream.read(10)
    assert stream.retries == 0

    result = cli("run", "--lang", "fin", "--snapshots", "2024-*", "--source", "https://nonexistent.invalid",
                 "--output", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: cannot reach nonexistent.invalid: its name does not resolve (DNS); check the network, or use "
        "--source DIR"]


def test_a_full_disk_names_the_output_and_leaves_no_temporary_file(reference, mirror, tmp_path):
    reference_output, _ = reference
    spool = cli_run(mirror, tmp_path, env={"CURATE_FAULT": "disk_full:stage3/.tmp-spool"})  # a stage-3 file's spool
    assert spool.returncode == 2, spool.stderr[-3000:]
    line = spool.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: cannot write the output: No space left on device ({tmp_path}/fin_Latn/_work/"
                           "stage3/"), line
    assert ".tmp-" not in line and not temporaries(tmp_path)

    shard = cli_run(mirror, tmp_path, env={"CURATE_FAULT": "disk_full:fin_Latn/data/"})  # publishing a shard
    assert shard.returncode == 2, shard.stderr[-3000:]
    line = shard.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: cannot write the output: No space left on device ({tmp_path}/fin_Latn/data/"), line
    assert not temporaries(tmp_path)

    resumed = cli_run(mirror, tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not temporaries(tmp_path)
    assert released(tmp_path) == released(reference_output)
