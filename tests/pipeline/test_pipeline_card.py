"""The dataset card: Hub front matter, numbers equal to the run's stats and shards, plots, and loading."""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from card_helpers import (
    CLUSTER_SIZES,
    CODE,
    DEDUP_REMOVED,
    GIT_COMMIT,
    LID_SHA,
    OTHER_LANGUAGE_COMMIT,
    STAGE3_RULES,
    STEP_TABLE,
    build_output,
)

from curate.errors import UserError
from curate.pipeline.publishing.card import (
    digest_label,
    find_table,
    hub_language_code,
    int_keyed,
    size_category,
    write_card,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def full(tmp_path_factory, shared):
    """A run with every optional part (dedup, rehydration, scores, weights) and its card."""
    built = build_output(tmp_path_factory.mktemp("full"), shared, full=True)
    write_card(str(built.root), "fin")
    return built


@pytest.fixture(scope="module")
def minimal(tmp_path_factory, shared):
    """A run as `curate run` writes it today: no dedup, no rehydration, only `language_score`."""
    built = build_output(tmp_path_factory.mktemp("minimal"), shared, full=False)
    write_card(str(built.root), "fin_Latn")
    return built


def split_card(folder: Path) -> tuple[dict, str]:
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    _, meta, body = text.split("---\n", 2)
    return yaml.safe_load(meta), body


def table_after(body: str, heading: str) -> list[list[str]]:
    """The rows (cells, thousands separators removed) of the first Markdown table after `heading`."""
    lines = body[body.index(heading):].splitlines()[1:]
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().replace(",", "") for cell in line.strip("|").split("|")])
    return rows


def datasets_resource(name: str):
    import datasets

    return json.loads((Path(datasets.__file__).parent / "utils" / "resources" / name).read_text())


def test_front_matter_is_valid_hub_metadata(full):
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard

    meta, _ = split_card(full.folder)
    assert list(meta) == ["license", "language", "pretty_name", "size_categories", "task_categories", "tags",
                          "configs"]
    assert meta["license"] == "odc-by"
    assert meta["language"] == ["fi"] and "fi" in datasets_resource("languages.json")
    assert meta["size_categories"] == ["1K<n<10K"] and full.documents == 1_266
    assert meta["size_categories"][0] in datasets_resource("size_categories.json")
    assert meta["task_categories"] == ["text-generation"]
    assert "Finnish" in meta["pretty_name"]
    configs = {c["config_name"]: c["data_files"] for c in meta["configs"]}
    assert list(configs) == ["default"]  # shards mix the crawls: a config per crawl would select files
    for name, data_files in configs.items():
        assert [f["split"] for f in data_files] == ["train"]
        matched = sorted(Path(p).relative_to(full.folder).as_posix()
                         for p in glob.glob(str(full.folder / data_files[0]["path"]), recursive=True))
        assert matched == full.shards, name
    card = DatasetCard.load(full.folder / "README.md")  # huggingface_hub's own parser
    assert card.data.license == "odc-by"
    assert set(MetadataConfigs.from_dataset_card_data(card.data)) == set(configs)


@pytest.mark.parametrize("documents, category", [
    (0, "n<1K"), (999, "n<1K"), (1_000, "1K<n<10K"), (9_999, "1K<n<10K"), (10_000, "10K<n<100K"),
    (2_500_000, "1M<n<10M"), (999_999_999_999, "100B<n<1T"), (10**12, "n>1T"),
])
def test_size_category_uses_the_hubs_buckets(documents, category):
    assert size_category(documents) == category
    assert category in datasets_resource("size_categories.json")


def test_card_numbers_equal_the_stats_and_the_shards(full):
    _, body = split_card(full.folder)
    stats = full.stats
    per_crawl = {row[0]: row for row in table_after(body, "### Per crawl")}
    assert {d: int(per_crawl[d][1]) for d in stats["released"]["per_dump"]} == stats["released"]["per_dump"]
    assert int(per_crawl["**total**"][1]) == stats["released"]["documents"] == full.documents
    size = {row[0]: row[1] for row in table_after(body, "## Size")}
    assert int(size["documents"]) == full.documents
    assert int(size["words (whitespace-separated)"]) == sum(len(t.split()) for t in full.texts)
    assert int(size["characters"]) == sum(len(t) for t in full.texts)
    assert int(size["tokens (estimate: characters ÷ 4)"]) == round(sum(len(t) for t in full.texts) / 4)
    assert int(size["documents after rehydration (sum of `weight`)"]) == full.weight_sum
    outcomes = {(row[0], row[1]): int(row[2]) for row in table_after(body, "### Documents kept and removed")}
    for stage in ("stage1", "stage3"):
        assert {rule: n for (s, rule), n in outcomes.items() if s == stage} == stats[stage]
    assert {rule: outcomes[("stage3", rule)] for rule in STAGE3_RULES} == STAGE3_RULES
    shared = {row[0]: int(row[1]) for row in table_after(body, "### Pages read")}
    assert shared == stats["shared"]
    steps = table_after(body, "## Rehydration")
    assert [int(row[1]) for row in steps] == list(STEP_TABLE.values())
    assert [row[0] for row in steps] == ["1", "2", "3–4", "5–99", "100–999", "1000+"]
    assert "fineweb2_fixed" in body
    dedup = body[body.index("## Deduplication"):body.index("## Rehydration")]
    assert f"| removed | {DEDUP_REMOVED} |" in dedup and "largest cluster 250 documents" in dedup
    assert f"{CLUSTER_SIZES['1']:,} of size 1" in dedup


def test_card_records_provenance_of_this_language_only(full):
    _, body = split_card(full.folder)
    provenance = body[body.index("## Provenance"):]
    assert GIT_COMMIT in provenance and LID_SHA in provenance
    assert "| curate | 0.1.0 |" in provenance and "| ray | 2.60.0 |" in provenance
    assert OTHER_LANGUAGE_COMMIT not in body and "0.0.9" not in body, "another language's manifests are left out"
    assert "From 4 unit manifests" in provenance


def test_each_digest_is_labelled_as_what_it_is(full):
    """A 64-hex sha256, the first 16 hex digits of one (takedown lists, code digests), or a version."""
    _, body = split_card(full.folder)
    provenance = body[body.index("## Provenance"):]
    assert "| model or list | digest / version |" in provenance and f"sha256 `{LID_SHA}`" in provenance
    assert digest_label("0123456789abcdef") == "sha256 prefix `0123456789abcdef` (first 16 hex digits)"
    assert digest_label("3.8.18") == "`3.8.18`" and digest_label(LID_SHA) == f"sha256 `{LID_SHA}`"


def test_a_card_on_s3_is_named_with_its_scheme(full, monkeypatch):
    import boto3
    import fsspec
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        endpoint = "http://%s:%d" % server.get_host_and_port()
        for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(name, value)
        boto3.client("s3").create_bucket(Bucket="cards")
        fs = fsspec.filesystem("s3", skip_instance_cache=True)
        fs.put(str(full.root), "cards/out", recursive=True)
        assert write_card("s3://cards/out", "fin") == "s3://cards/out/fin_Latn/README.md"
        with pytest.raises(UserError, match=r"no s3://cards/none/fin_Latn/stats\.json: run"):
            write_card("s3://cards/none", "fin")
    finally:
        server.stop()


def test_plots_are_small_pngs_linked_from_the_card(full):
    _, body = split_card(full.folder)
    images = sorted(p.name for p in (full.folder / "images").iterdir())
    assert images == ["cluster_sizes.png", "removal_per_rule.png", "score_language_score.png",
                      "score_perplexity.png", "score_quality_score.png"]
    for name in images:
        data = (full.folder / "images" / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) < 80_000, name
        assert f"(images/{name})" in body


def test_card_and_plots_are_reproducible(full):
    before = {p: p.read_bytes() for p in [full.folder / "README.md", *(full.folder / "images").iterdir()]}
    write_card(str(full.root), CODE)
    after = {p: p.read_bytes() for p in [full.folder / "README.md", *(full.folder / "images").iterdir()]}
    assert after == before, "same run, same card bytes: a re-release uploads nothing new"


def test_missing_parts_are_left_out(minimal):
    meta, body = split_card(minimal.folder)
    assert "## Deduplication" not in body and "## Rehydration" not in body and "`weight`" not in body
    assert sorted(p.name for p in (minimal.folder / "images").iterdir()) == ["removal_per_rule.png",
                                                                             "score_language_score.png"]
    assert "| `language_score` |" in body and "quality_score" not in body
    assert meta["size_categories"] == ["1K<n<10K"]


def test_stale_images_are_removed_when_the_card_is_rewritten(tmp_path, shared):
    built = build_output(tmp_path, shared, full=True)
    write_card(str(built.root), CODE)
    stats = built.stats
    del stats["dedup"]
    (built.folder / "stats.json").write_text(json.dumps(stats))
    write_card(str(built.root), CODE, plots=True)
    assert not (built.folder / "images" / "cluster_sizes.png").exists()
    write_card(str(built.root), CODE, plots=False)
    assert list((built.folder / "images").iterdir()) == []
    assert "images/" not in (built.folder / "README.md").read_text()


def test_folder_loads_with_datasets_and_polars_without_work_files(full, tmp_path):
    import datasets
    import polars as pl

    cache = str(tmp_path / "hf-cache")
    everything = datasets.load_dataset(str(full.folder), split="train", cache_dir=cache)
    assert everything.num_rows == full.documents
    ids = set(everything["id"])
    assert len(ids) == full.documents and not ids & full.work_ids, "_work/ stage files are not the dataset"
    one_crawl = everything.filter(lambda row: row["dump"] == "CC-MAIN-2024-22")  # as the card shows
    assert 'ds.filter(lambda row: row["dump"] == "CC-MAIN-2024-22")' in (full.folder / "README.md").read_text()
    assert one_crawl.num_rows == full.per_dump["CC-MAIN-2024-22"] and set(one_crawl["dump"]) == {"CC-MAIN-2024-22"}
    assert "weight" in everything.column_names and "quality_score" in everything.column_names
    frame = pl.scan_parquet(str(full.folder) + "/data/**/*.parquet")
    assert frame.select(pl.len()).collect().item() == full.documents
    counts = dict(frame.group_by("dump").agg(pl.len()).collect().iter_rows())
    assert counts == full.per_dump
    assert not set(frame.select("id").collect()["id"]) & full.work_ids


def test_missing_stats_or_shards_say_run_first(tmp_path, shared):
    with pytest.raises(UserError, match=r"run `curate run --lang fin_Latn"):
        write_card(str(tmp_path), "fin")
    built = build_output(tmp_path / "out", shared, full=False)
    for shard in built.shards:
        (built.folder / shard).unlink()
    with pytest.raises(UserError, match=r"no released shards .* run `curate run"):
        write_card(str(built.root), "fin")
    with pytest.raises(UserError, match="unknown language 'xyz'"):
        write_card(str(built.root), "xyz")


def test_language_codes_and_stats_shapes():
    assert hub_language_code("fin", "fin_Latn") == "fi"
    assert hub_language_code("ekk", "ekk_Latn") == "et"
    assert hub_language_code("xyz", "xyz_Latn") == "xyz"
    assert int_keyed({"2": 5, "1": 7}) == {1: 7, 2: 5}
    assert int_keyed({"kept": 3}) is None
    assert find_table({"method": "linear", "table": {"1": 1, "10": 3}}, ("table",)) == {1: 1, 10: 3}
    assert find_table({"3": 1, "1": 9}, ("cluster_sizes",)) == {1: 9, 3: 1}
    assert find_table({"removed": 4}, ("cluster_sizes",)) is None


def test_shard_columns_follow_fineweb2(full):
    names = pq.read_schema(full.folder / full.shards[0]).names
    _, body = split_card(full.folder)
    columns = [row[0].strip("`") for row in table_after(body, "## Columns")]
    assert columns == names


def test_the_card_says_when_no_robots_txt_was_available_at_all():
    from curate.pipeline.publishing.card import optout_lines

    none = "\n".join(optout_lines({"applied": ["tdm"], "robots_crawls": {"CC-MAIN-2024-18": False}}))
    assert "No robots.txt file was available for CC-MAIN-2024-18: no page was checked against robots.txt." in none
    assert "other crawls read" not in none
    some = "\n".join(optout_lines({"applied": ["robots", "tdm"], "agents": ["CCBot"],
                                   "robots_crawls": {"CC-MAIN-2024-18": False, "CC-MAIN-2024-22": True}}))
    assert ("robots.txt files were not available for CC-MAIN-2024-18: its pages were checked only against the "
            "robots.txt files of the other crawls read.") in some


@pytest.mark.parametrize("histogram", [{1: 40, 2: 5, 3: 2, 6: 1}, {1: 90_000, 2: 3_000, 40: 7, 250_000: 1}])
def test_cluster_size_ticks_are_plain_integers(histogram):
    """Over a narrow range (sizes 1-6) as over six decades: labels like `2`, `5`, `1,000`, never `2×10⁰`."""
    from curate.pipeline.publishing.plots import cluster_size_figure

    figure = cluster_size_figure(histogram)
    figure.canvas.draw()
    axes = figure.axes[0]
    for axis in (axes.xaxis, axes.yaxis):
        low, high = sorted(axis.get_view_interval())
        index = int(axis is axes.yaxis)  # a tick label's position: (x, y)
        shown = [t.get_text() for t in axis.get_majorticklabels() if low <= t.get_position()[index] <= high]
        assert len(shown) >= 2 and all(label.replace(",", "").isdigit() for label in shown), shown
        assert not [t for t in axis.get_minorticklabels() if t.get_text()]
