"""Statistics once, thresholds later: editing a filter threshold reruns stage 3 and the final stage only (no
stage-1 unit is recomputed, no document scored again), and the shards are byte for byte those of a fresh run
with the edited config (run on one CPU where the others use two). The bucket count, chosen after stage 1 from
its bytes, changes no stage-1 unit either."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from curate.language_configs.schema import config_path
from curate.pipeline.execution.run import RunOptions, run


def _options(mirror, output: Path, cpus: int = 2) -> RunOptions:
    return RunOptions(languages=["fin"], snapshots="2024-22", source=str(mirror.root), output=str(output),
                      lid="ft176", files_per_unit=1, buckets=2, num_cpus=cpus)


def _manifests(output: Path, stage: str) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((output / "_work" / "manifests" / stage).glob("*.json"))}


def _shards(output: Path) -> dict[str, bytes]:
    root = output / "fin_Latn" / "data"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


@pytest.fixture(scope="module")
def edited(mirror, tmp_path_factory, monkeypatch_module):
    output = tmp_path_factory.mktemp("out")
    before = run(_options(mirror, output)).languages["fin_Latn"]
    stage1, stage3 = _manifests(output, "stage1"), _manifests(output, "stage3")
    configs = tmp_path_factory.mktemp("configs")
    text = config_path("fin_Latn").read_text(encoding="utf-8")
    assert "    min_word_count: 50\n" in text
    (configs / "fin_Latn.yaml").write_text(text.replace("    min_word_count: 50\n", "    min_word_count: 150\n"))
    monkeypatch_module.setenv("CURATE_LANGUAGE_CONFIGS", str(configs))
    after = run(_options(mirror, output)).languages["fin_Latn"]
    fresh_output = tmp_path_factory.mktemp("fresh")
    fresh = run(_options(mirror, fresh_output, cpus=1)).languages["fin_Latn"]
    return {"output": output, "fresh_output": fresh_output, "before": before, "after": after, "fresh": fresh,
            "stage1": stage1, "stage3": stage3, "mirror": mirror}


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_no_stage1_unit_is_recomputed(edited):
    assert edited["stage1"] and _manifests(edited["output"], "stage1") == edited["stage1"]
    assert _manifests(edited["output"], "stage3") != edited["stage3"]  # stage 3 did run again


def test_the_rerun_scores_no_document_again(edited):
    """Scores are kept by doc_key and model digest: the rerun reuses every one (the web-docs scorer is on)."""
    scores = [m["result"]["scores"] for m in _manifests(edited["output"], "stage3").values()]
    assert sum(s["web_docs"][0] for s in scores) > 0
    assert all(scored == 0 for s in scores for _, scored in s.values())


def test_the_edit_changes_the_release_as_a_fresh_run_does(edited):
    removed = "gopher_quality.word_count_low"
    assert edited["after"]["stage3"][removed] > edited["before"]["stage3"].get(removed, 0)
    assert edited["after"]["released"] == edited["fresh"]["released"]
    assert edited["after"]["released"]["documents"] < edited["before"]["released"]["documents"]
    shards = _shards(edited["output"])
    assert shards and shards == _shards(edited["fresh_output"])


def _ids(output: Path) -> list[str]:
    import pyarrow.parquet as pq

    return sorted(i for p in sorted((output / "fin_Latn" / "data").rglob("*.parquet"))
                  for i in pq.read_table(p, columns=["id"])["id"].to_pylist())


@pytest.fixture(scope="module")
def rebucketed(edited):
    """The edited output rerun with the bucket count chosen from the bytes (three buckets' worth)."""
    output = edited["output"]
    stage1 = _manifests(output, "stage1")
    written = sum(m["result"]["kept_bytes"].get("fin_Latn", 0) for m in stage1.values())
    ids = _ids(output)
    options = dataclasses.replace(_options(edited["mirror"], output), buckets=None, bucket_bytes=-(-written // 3))
    stats = run(options).languages["fin_Latn"]
    return {"stage1": stage1, "written": written, "ids": ids, "stats": stats}


def test_the_bucket_count_follows_the_stage1_bytes_and_keeps_stage1(rebucketed, edited):
    output = edited["output"]
    assert rebucketed["written"] > 0 and rebucketed["stats"]["input"]["buckets"] == 3
    assert sorted(_manifests(output, "stage3")) == [f"fin_Latn-{b:05d}.json" for b in range(3)]
    assert _manifests(output, "stage1") == rebucketed["stage1"]  # no stage-1 unit recomputed
    assert _ids(output) == rebucketed["ids"]  # the same documents released, from three buckets
    scores = [m["result"]["scores"] for m in _manifests(output, "stage3").values()]
    assert all(scored == 0 for s in scores for _, scored in s.values())  # stored scores follow key ranges
