"""`curate run` end to end on a local CC mirror: selection, outputs, bad input, resume, quarantine, user mistakes
(failures and kills: test_pipeline_recovery.py)."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from mirror import released
from run_helpers import FINEWEB2_COLUMNS, cli, cli_run, run_options

import curate
from curate.errors import UserError
from curate.pipeline.execution.driver import RunStats, StageCounts
from curate.pipeline.execution.run import run, run_summary


def test_selected_crawls_and_finnish_documents(reference, mirror):
    output, stats = reference
    documents = released(output)
    assert set(stats["released"]["per_dump"]) == {"CC-MAIN-2024-18", "CC-MAIN-2024-22"}
    assert {d["dump"] for d in documents.values()} == {"CC-MAIN-2024-18", "CC-MAIN-2024-22"}
    assert stats["stage1"]["kept"] == len(mirror.finnish), "every planted Finnish page passes LID"
    assert set(documents) <= set(mirror.finnish), "no other language reaches the output"
    removed_by_filters = sum(v for k, v in stats["stage3"].items() if k != "kept")
    assert len(documents) == stats["released"]["documents"] == len(mirror.finnish) - removed_by_filters
    for record_id, document in documents.items():
        source_text = mirror.finnish[record_id]
        first_sentence = source_text.split("\n\n")[0][:60]
        assert first_sentence in document["text"]
        assert "Kaikki oikeudet pidätetään" not in document["text"], "footer boilerplate is extracted away"
        assert document["language"] == "fin" and document["language_script"] == "Latn"
        assert document["language_score"] >= 0.65
        assert document["file_path"].startswith("s3://commoncrawl/crawl-data/" + document["dump"])
        assert json.loads(document["top_langs"])["fin_Latn_score"] == pytest.approx(document["language_score"], abs=1e-3)
    assert "<urn:uuid:wrong-encoding-0>" in documents and "pöytä" not in documents.get("x", {})


def test_release_columns_follow_fineweb2(reference):
    output, _ = reference
    shard = next((output / "fin_Latn" / "data").rglob("*.parquet"))
    names = pq.read_schema(shard).names
    assert names[: len(FINEWEB2_COLUMNS)] == FINEWEB2_COLUMNS
    assert not [n for n in names if n.startswith("stat_") or n in ("doc_key", "bucket", "drop_reason")]
    assert {"minhash_cluster_id", "minhash_cluster_size", "web_docs_score", "adult_domain", "weight"} <= set(names)
    scores = [d["web_docs_score"] for d in released(output).values()]
    assert all(0 <= s <= 10 for s in scores) and sum(scores) / len(scores) > 5, "clean news text scores well"


def test_bad_records_are_counted_by_reason(reference, mirror):
    _, stats = reference
    assert {k: stats["shared"].get(k, 0) for k in mirror.planted} == mirror.planted
    assert stats["shared"]["lid.other_language"] > 0
    assert stats["language_mix"]["ekk_Latn"] > 0 and stats["language_mix"]["swe_Latn"] > 0


def test_startup_is_broken_down(reference):
    _, stats = reference
    seconds = stats["seconds"]
    parts = seconds["startup_parts"]
    assert set(parts) == {"plan", "ray", "checks", "checks_after_ray", "optouts_models", "preflight"}
    assert all(value >= 0 for value in parts.values())
    in_sequence = sum(v for k, v in parts.items() if k != "checks")  # the checks overlap Ray's start-up
    assert in_sequence <= seconds["startup"] + 0.01 and in_sequence >= seconds["startup"] * 0.9


def test_every_worker_slot_warms_stage_one(reference):
    """After the run's Ray is up, one warm-up task a worker slot of the cluster, each warming every block given
    (`Block.warm`); a block that fails to warm costs only itself."""
    import ray

    from curate.blocks.lid import LanguageId
    from curate.blocks.url_filter import UrlFilter
    from curate.pipeline.execution.nodes import warm_workers

    assert ray.is_initialized()
    refs = warm_workers([UrlFilter(), LanguageId(model="ft176"), LanguageId(model="/no/such/model.bin")], 1.0)
    assert len(refs) == int(ray.cluster_resources()["CPU"])
    assert ray.get(refs) == [2] * len(refs)


def test_removed_rows_are_audited_with_a_reason(reference):
    output, stats = reference
    removed = list((output / "fin_Latn" / "_work" / "removed").rglob("*.parquet"))
    reasons = [r for path in removed for r in pq.read_table(path)["drop_reason"].to_pylist()]
    counted = {k: v for k, v in stats["stage3"].items() if k != "kept"}
    counted.update({k: v for k, v in stats["stage1"].items() if k != "kept" and v})
    assert sorted(reasons) == sorted(r for r, n in counted.items() for _ in range(n))
    assert all("." in r for r in reasons)


def test_manifests_record_provenance(reference):
    output, _ = reference
    manifest = json.loads(next((output / "_work" / "manifests" / "stage1").glob("*.json")).read_text())
    assert manifest["provenance"]["versions"]["ray"] and manifest["provenance"]["versions"]["trafilatura"]
    from curate.blocks.lid import file_sha256, ft176_path

    assert manifest["provenance"]["models"]["lid_model:ft176"] == file_sha256(str(ft176_path()))
    assert manifest["files"] and manifest["fingerprint"]


def test_rerun_reuses_every_unit_and_gives_the_same_output(reference, mirror):
    output, _ = reference
    manifests = sorted((output / "_work" / "manifests").rglob("*.json"))
    before = {p: p.read_text() for p in manifests}
    shards = {p: p.read_bytes() for p in (output / "fin_Latn" / "data").rglob("*.parquet")}
    stats = run(run_options(mirror, output)).languages["fin_Latn"]
    assert {p: p.read_text() for p in manifests} == before, "no unit ran again"
    assert {p: p.read_bytes() for p in (output / "fin_Latn" / "data").rglob("*.parquet")} == shards
    assert not any(u["reused"] for u in reference[1]["units"].values())
    assert reference[1]["documents_per_second"] > 0
    for stage, units in stats["units"].items():
        assert units["total"] == reference[1]["units"][stage]["total"] == units["reused"] == len(
            list((output / "_work" / "manifests" / stage).glob("*.json"))), stage
    assert stats["documents_per_second"] is None, "no made-up throughput"
    stage1, total = stats["units"]["stage1"]["total"], sum(u["total"] for u in stats["units"].values())
    assert run_summary(stats) == f"all {stage1} stage-1 units reused; {total} of {total} units reused"


def stage3_rows(output: Path) -> list[dict]:
    """Every row stage 3 kept or removed (after dedup, filters and formatters)."""
    paths = [*(output / "fin_Latn" / "_work" / "stage3").glob("*.parquet"),
             *(output / "fin_Latn" / "_work" / "removed" / "stage3").glob("*.parquet")]
    columns = ["id", "doc_key", "drop_reason", "minhash_cluster_size", "minhash_cluster_id", "exact_cluster_size"]
    rows = []
    for path in paths:
        table = pq.read_table(path)
        rows += table.select([c for c in columns if c in table.column_names]).to_pylist()
    return rows


def test_planted_duplicates_become_one_cluster_with_their_size(reference, mirror):
    output, stats = reference
    rows = {r["id"]: r for r in stage3_rows(output)}
    assert mirror.duplicates, "the mirror plants syndicated copies"
    for original, copies in mirror.duplicates.items():
        group = [rows[i] for i in (original, *copies)]
        survivors = [r for r in group if not (r.get("drop_reason") or "").startswith("dedup.")]
        assert len(survivors) == 1, "one representative per cluster"
        assert {r["minhash_cluster_size"] for r in group} == {len(group)}
        assert len({r["minhash_cluster_id"] for r in group}) == 1
        assert survivors[0]["doc_key"] == survivors[0]["minhash_cluster_id"] == min(r["doc_key"] for r in group)
    # the two copies of one page are identical (the original's page title differs from theirs)
    assert stats["stage3"]["dedup.exact"] >= 1
    # besides the planted groups, the generated text has natural near-duplicates: all agree with the stats
    clusters = Counter(r["minhash_cluster_id"] for r in rows.values() if r["minhash_cluster_size"] > 1)
    histogram = stats["dedup"]["minhash"]["histogram"]
    assert {int(k): v for k, v in histogram.items() if k != "1"} == dict(Counter(clusters.values()))
    removed = sum(size - 1 for size in clusters.values())
    assert stats["stage3"]["dedup.exact"] + stats["stage3"]["dedup.minhash"] == removed
    assert histogram["1"] == stats["stage1"]["kept"] - sum(clusters.values())


def test_released_documents_carry_their_rehydration_weight(reference):
    from curate.rebalancing import repetitions_for_cluster_sizes

    output, stats = reference
    table = stats["rehydration"]["table"]
    assert stats["rehydration"]["method"] == "removal_rates"
    for document in released(output).values():
        assert document["weight"] == repetitions_for_cluster_sizes(table, [document["minhash_cluster_size"]])[0]
    distribution = json.loads((output / "fin_Latn" / "rehydration" / "distribution.json").read_text())
    by_rules = sum(v for k, v in stats["stage3"].items() if k != "kept" and not k.startswith("dedup."))
    deduplicated = stats["stage1"]["kept"] - stats["stage3"]["dedup.exact"] - stats["stage3"]["dedup.minhash"]
    assert distribution["global_removal_rate"] == pytest.approx(100 * by_rules / deduplicated)


def test_many_languages_read_each_warc_once(reference, mirror, tmp_path):
    reference_output, reference_stats = reference
    ran = run(run_options(mirror, tmp_path, languages=["fin", "ekk", "swe"]))
    assert isinstance(ran, RunStats) and all(isinstance(c, StageCounts) for c in ran.stages.values())
    stats = ran.languages
    assert set(stats) == {"fin_Latn", "ekk_Latn", "swe_Latn"} and ran.skipped == [] and ran.units_reused == 0
    # three small languages × 4 buckets: each bucket commits on its own, all of them in one task a stage
    for stage in ("stage3", "final"):
        assert (ran.stages[stage].reused, ran.stages[stage].total, ran.stages[stage].tasks) == (0, 12, 1), stage
        for code in stats:
            assert len(list((tmp_path / "_work" / "manifests" / stage).glob(f"{code}-*.json"))) == 4
            assert stats[code]["units"][stage] == {"reused": 0, "total": 4}
    recorded = json.loads((tmp_path / "run.json").read_text())["stages"]
    assert recorded["stage3"]["tasks"] == 1 and recorded["stage1"]["total"] == ran.stages["stage1"].total
    assert {s["documents_read"] for s in stats.values()} == {reference_stats["documents_read"]}
    units = list((tmp_path / "_work" / "manifests" / "stage1").glob("*.json"))
    assert len(units) == len(list((reference_output / "_work" / "manifests" / "stage1").glob("*.json")))
    assert released(tmp_path) == released(reference_output), "routing more languages changes nothing for one"
    for code, prefix in (("ekk_Latn", "/est/"), ("swe_Latn", "/swe/")):
        assert stats[code]["stage1"]["kept"] > 0
        for path in (tmp_path / code / "data").rglob("*.parquet"):
            assert all(prefix in url for url in pq.read_table(path, columns=["url"])["url"].to_pylist())


def test_widening_the_snapshots_reuses_finished_stage1_units(reference, mirror, tmp_path):
    reference_output, reference_stats = reference
    narrow = run(run_options(mirror, tmp_path, snapshots="2024-22")).languages["fin_Latn"]
    assert set(narrow["released"]["per_dump"]) == {"CC-MAIN-2024-22"}
    stage1 = {p: p.read_text() for p in (tmp_path / "_work" / "manifests" / "stage1").glob("*.json")}
    wide = run(run_options(mirror, tmp_path)).languages["fin_Latn"]
    assert {p: p.read_text() for p in stage1} == stage1, "the first crawl's units are not run again"
    assert len(list((tmp_path / "_work" / "manifests" / "stage1").glob("*.json"))) > len(stage1)
    assert released(tmp_path) == released(reference_output), "the wider dedup and its cluster sizes are fresh"
    assert wide["dedup"]["minhash"]["histogram"] == reference_stats["dedup"]["minhash"]["histogram"]
    assert len(list((tmp_path / "fin_Latn" / "_work" / "dedup").iterdir())) == 1, "the narrower run's is gone"


def test_a_file_that_always_kills_its_worker_is_quarantined_and_retried_by_the_rerun(mirror, tmp_path, reference):
    poisoned = mirror.crawls["CC-MAIN-2024-22"][1]
    fault = {"CURATE_FAULT": f"read_file:{poisoned}"}
    strict = cli_run(mirror, tmp_path, "--max-retries", "1", "--max-quarantined", "0", env=fault)
    assert strict.returncode == 2, strict.stderr[-3000:]
    line = strict.stderr.strip().splitlines()[-1]
    assert line.startswith("error: 1 of 5 files quarantined, more than --max-quarantined 0: s3://commoncrawl/"
                           + poisoned) and "Traceback" not in strict.stderr, strict.stderr[-3000:]
    quarantine = list((tmp_path / "_work" / "quarantine").glob("*.json"))
    assert len(quarantine) == 1 and poisoned in quarantine[0].read_text(), "recorded apart from the commit"

    kept_out = cli_run(mirror, tmp_path, "--skip-quarantined")  # the fault is gone, but the file stays out
    assert kept_out.returncode == 0, kept_out.stderr[-3000:]  # and 1 of 5 files is within the default (1)
    stats = json.loads((tmp_path / "fin_Latn" / "stats.json").read_text())
    assert len(stats["quarantined"]) == 1 and stats["quarantined"][0].startswith("s3://commoncrawl/" + poisoned)
    documents = released(tmp_path)
    assert documents and not [d for d in documents.values() if d["file_path"].endswith(poisoned)]
    assert set(documents) < set(released(reference[0]))

    retried = cli_run(mirror, tmp_path)  # by default a rerun retries the quarantined file
    assert retried.returncode == 0, retried.stderr[-3000:]
    assert json.loads((tmp_path / "fin_Latn" / "stats.json").read_text())["quarantined"] == []
    assert not list((tmp_path / "_work" / "quarantine").glob("*.json"))
    assert released(tmp_path) == released(reference[0])


def test_dry_run_lists_files_and_writes_nothing(mirror, tmp_path):
    result = cli_run(mirror, tmp_path / "out", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert mirror.crawls["CC-MAIN-2024-18"][0] in result.stdout
    assert "5 files in 5 units" in result.stdout  # 2 CPUs: 8 units wanted, one file each (--files-per-unit 2) and "core-hours" in result.stdout
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--lang", "xyz"], "error: unknown language 'xyz': not one of the 1,929 configured languages "),
    (["--snapshots", "2099-*"], "error: no crawl matches '2099-*'; the source has: CC-MAIN-2024-22"),
    (["--lid", "/no/such/model.bin"], "error: LID model '/no/such/model.bin' not found"),
    (["--files-per-unit", "0"], "error: --files-per-unit 0: give a number of at least 1"),
    (["--buckets", "0"], "error: --buckets 0: give a number of at least 1"),
    (["--limit", "-5"], "error: --limit -5: give a number of at least 1"),
])
def test_user_mistakes_end_with_one_line(mirror, tmp_path, args, message):
    base = {"--lang": "fin", "--snapshots": "2024-*", "--lid": "ft176"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    flat = [x for pair in base.items() for x in pair]
    result = cli("run", *flat, "--source", str(mirror.root), "--output", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_unwritable_output_and_held_lock_are_one_line(mirror, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = cli_run(mirror, blocker / "out")
    assert result.returncode == 2 and result.stderr.startswith("error: cannot write to "), result.stderr
    out = tmp_path / "locked"
    out.mkdir()
    (out / ".curate.lock").write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename,
                                                  "started": "now"}))
    result = cli_run(mirror, out)
    assert result.returncode == 2 and result.stderr.startswith("error: another curate run (pid"), result.stderr


def test_inspect_shows_removed_documents_with_their_measured_value(reference):
    output, stats = reference
    reasons = {k: v for k, v in stats["stage3"].items() if k != "kept" and not k.startswith("dedup.")}
    assert reasons, "the mirror's text trips at least one filter"
    reason, count = max(reasons.items(), key=lambda item: item[1])
    result = cli("inspect", str(output), "--lang", "fin", "--reason", reason, "-n", "2", check=True)
    assert result.stdout.startswith(f"{count:,} documents removed for {reason}; showing {min(2, count)}")
    from curate.pipeline.publishing.inspect import removed_documents

    total, shown = removed_documents(str(output), "fin", reason, 10)
    assert total == count
    for document in shown:
        assert document.reason == reason and document.measured is not None and document.threshold is not None
        assert (document.measured > document.threshold) if document.bound == "max" else \
            (document.measured < document.threshold)


def test_inspect_says_a_counted_only_reason_is_counted_not_stored(reference):
    """stats.json counts pages of other languages (`lid.other_language`); inspect says why it shows none."""
    output, stats = reference
    counted = stats["shared"]["lid.other_language"]
    assert counted > 0
    result = cli("inspect", str(output), "--lang", "fin", "--reason", "lid.other_language")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"error: {counted:,} pages were counted under 'lid.other_language' (stats.json) but not stored: pages of "
        "other languages are most of a crawl, so a run counts them and keeps none (run their language with "
        "`curate run --lang …` to see them)")


def test_inspect_prints_the_runs_thresholds(reference, tmp_path, monkeypatch):
    """The threshold shown is the one the run applied (its stage-3 manifests), not today's config."""
    import yaml

    from curate.language_configs.schema import load_language_config
    from curate.pipeline.publishing.inspect import removed_documents

    output, stats = reference
    rule = "gopher_quality.alpha_token_share"
    applied = load_language_config("fin_Latn").filters.gopher_quality.min_alpha_token_share
    today = yaml.safe_load((Path(__file__).parents[2] / "language_configs" / "fin_Latn.yaml").read_text("utf-8"))
    today["filters"]["gopher_quality"]["min_alpha_token_share"] = 0.5
    (tmp_path / "fin_Latn.yaml").write_text(yaml.safe_dump(today, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("CURATE_LANGUAGE_CONFIGS", str(tmp_path))
    assert load_language_config("fin_Latn").filters.gopher_quality.min_alpha_token_share == 0.5
    total, shown = removed_documents(str(output), "fin", rule, 2)
    assert total == stats["stage3"][rule]
    assert {(d.bound, d.threshold) for d in shown} == {("min", applied)}
    assert all(d.measured < applied for d in shown)


def test_inspect_searches_the_shared_removed_files(tmp_path):
    """URL-filter and extraction removals are written before any language is known, outside the language folder;
    files with other columns (stage 1, stage 3, shared) are read under one schema, the reason pushed down."""
    import pyarrow as pa

    from curate.pipeline.execution.storage import Output
    from curate.pipeline.publishing.inspect import removed_documents

    output = Output(str(tmp_path))
    shared = pa.table({"id": ["a", "b", "c"], "url": ["https://x.fi/1", "https://x.fi/2", "https://y.fi/3"],
                       "drop_reason": ["url_filter.blocklist", "extract.empty", "url_filter.blocklist"]})
    output.write_parquet(output.path("_work", "removed", "stage1", "u1.parquet"), shared)
    language = pa.table({"id": ["d"], "url": ["https://z.fi/4"], "text": ["Lyhyt."],
                         "drop_reason": ["gopher_quality.word_count_low"], "stat_word_count": [1]})
    output.write_parquet(output.language("fin_Latn", "_work", "removed", "stage3", "b0.parquet"), language)
    total, shown = removed_documents(str(tmp_path), "fin", "url_filter", 5)
    assert total == 2 and [d.url for d in shown] == ["https://x.fi/1", "https://y.fi/3"]
    total, shown = removed_documents(str(tmp_path), "fin", "gopher_quality.word_count_low", 5)
    assert total == 1 and shown[0].measured == 1 and shown[0].bound == "min" and shown[0].threshold is None
    with pytest.raises(UserError, match=r"reasons in this run: url_filter.blocklist \(2\), "):
        removed_documents(str(tmp_path), "fin", "c4", 5)


def test_the_run_writes_a_dataset_card_that_loads_only_the_shards(reference):
    import datasets
    import yaml

    output, stats = reference
    card = (output / "fin_Latn" / "README.md").read_text(encoding="utf-8")
    front = yaml.safe_load(card.split("---")[1])
    assert front["configs"][0]["data_files"][0]["path"] == "data/**/*.parquet"
    assert f"{stats['released']['documents']:,}" in card
    loaded = datasets.load_dataset(str(output / "fin_Latn"), split="train", cache_dir=str(output / ".hf-cache"))
    assert loaded.num_rows == stats["released"]["documents"]


def test_the_run_ends_with_a_self_contained_report(reference):
    output, stats = reference
    page = (output / "report.html").read_text(encoding="utf-8")
    assert f"{stats['released']['documents']:,}" in page and f"{stats['documents_read']:,}" in page
    assert "Deduplication" in page and "Rehydration" in page
    assert not [m for m in ("src=\"http", "href=\"http", "url(http", "<script") if m in page]


def test_editing_a_block_redoes_its_units_and_editing_docs_does_not(mirror, tmp_path):
    package = tmp_path / "code" / "curate"
    shutil.copytree(Path(curate.__file__).parent, package, ignore=shutil.ignore_patterns(
        ".git", "tests", "benchmarks", "__pycache__", ".venv", "*.pyc"))
    output = tmp_path / "out"
    stage1 = output / "_work" / "manifests" / "stage1"

    def run_copy() -> dict[str, str]:
        result = cli("run", "--lang", "fin", "--snapshots", "CC-MAIN-2024-18", "--source", str(mirror.root), "--lid",
                     "ft176", "--output", str(output), "--buckets", "2", "--cpus", "2",
                     env={"PYTHONPATH": str(package.parent)})
        assert result.returncode == 0, result.stderr[-3000:]
        return {p.name: json.loads(p.read_text())["fingerprint"] for p in stage1.glob("*.json")}

    before = run_copy()
    documents = released(output)
    (package / "README.md").write_text((package / "README.md").read_text() + "\nAn edit of the docs.\n")
    report = package / "pipeline" / "publishing" / "report.py"
    report.write_text(report.read_text() + "\n# an edit stage 1 never imports\n")
    assert run_copy() == before

    block = package / "blocks" / "url_filter.py"
    block.write_text(block.read_text() + "\n# an edit of a stage-1 block\n")
    after = run_copy()
    assert set(after) == set(before) and not set(after.values()) & set(before.values()), "every unit redone"
    assert released(output) == documents


def test_inspect_of_a_counted_only_reason_in_a_run_that_stored_no_removal(tmp_path):
    """A run that removed nothing has no removed files; its counted-only reasons still get their answer."""
    from curate.pipeline.execution.storage import Output
    from curate.pipeline.publishing.inspect import removed_documents

    output = Output(str(tmp_path))
    output.write_json(output.language("fin_Latn", "stats.json"), {"shared": {"lid.other_language": 3}})
    with pytest.raises(UserError, match=r"^3 pages were counted under 'lid.other_language' \(stats.json\) but not"):
        removed_documents(str(tmp_path), "fin", "lid.other_language")
    with pytest.raises(UserError, match="no removed documents under"):
        removed_documents(str(tmp_path), "fin", "gopher_quality")
