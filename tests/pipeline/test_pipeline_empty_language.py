"""No language stops another: `curate run --lang dan,fin` on the mirror, which has no Danish page, exits 0 with
Finnish released and Danish a row of zeros in its stats.json, the report's index and its card."""

from __future__ import annotations

import json
import re

import pyarrow.parquet as pq
import pytest
from run_helpers import cli


@pytest.fixture(scope="module")
def danish_and_finnish(mirror, tmp_path_factory):
    output = tmp_path_factory.mktemp("dan-fin")
    result = cli("run", "--lang", "dan,fin", "--snapshots", "2024-18", "--source", str(mirror.root), "--lid", "ft176",
                 "--output", str(output), "--files-per-unit", "2", "--cpus", "2")
    return output, result


def test_a_language_with_no_page_is_a_result(danish_and_finnish):
    output, result = danish_and_finnish
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dan_Latn: 0 documents" in result.stdout
    danish = json.loads((output / "dan_Latn" / "stats.json").read_text())
    finnish = json.loads((output / "fin_Latn" / "stats.json").read_text())
    assert danish["released"] == {"documents": 0, "per_dump": {}} and danish["stage3"] == {"kept": 0}
    shards = sorted((output / "fin_Latn" / "data").rglob("*.parquet"))
    assert finnish["released"]["documents"] == sum(pq.read_metadata(p).num_rows for p in shards) > 0
    assert not list((output / "dan_Latn").rglob("*.parquet"))
    assert json.loads((output / "run.json").read_text())["languages"] == ["dan_Latn", "fin_Latn"]


def test_the_empty_language_has_its_card_and_report_row(danish_and_finnish):
    output, _ = danish_and_finnish
    card = (output / "dan_Latn" / "README.md").read_text()
    assert "0 Danish documents" in card and "| documents | 0 |" in card
    report = (output / "report.html").read_text()
    index = report[:report.index('<section id="lang-')]
    row = re.search(r"<tr><td>dan_Latn</td>(.*?)</tr>", index, re.S)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1)) if row else []
    assert cells[0] == "Danish" and cells[-6] == "0" and cells[-2] == "0"  # identified as Danish 0, released 0
    assert 'id="lang-dan_Latn"' in report and 'id="lang-fin_Latn"' in report


def test_one_release_of_both_languages(danish_and_finnish, monkeypatch, tmp_path):
    """`curate release OUT --lang all`: one dataset, a config per language that released documents, one card with
    a row per language (Danish: 0), uploaded in one commit; the card's config loads the language's shards."""
    import shutil

    import datasets
    import yaml
    from card_helpers import FakeHub
    from huggingface_hub import HfApi, constants

    from curate.pipeline.publishing.languages_card import write_languages_card
    from curate.pipeline.publishing.release import release_languages

    output = tmp_path / "out"
    shutil.copytree(danish_and_finnish[0], output)
    write_languages_card(str(output), ["dan_Latn", "fin_Latn"], repo_id="org/web")
    card = (output / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["configs"] == [{"config_name": "fin_Latn",
                                "data_files": [{"split": "train", "path": "fin_Latn/data/**/*.parquet"}]}]
    assert meta["language"] == ["fi"]
    assert "| dan_Latn | Danish | 51 | 0 | 0 | 0 |" in card
    finnish = json.loads((output / "fin_Latn" / "stats.json").read_text())["released"]["documents"]
    loaded = datasets.load_dataset(str(output), name="fin_Latn", split="train")
    assert loaded.num_rows == finnish
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    with FakeHub() as hub:
        paths = release_languages(str(output), ["fin_Latn"], "org/web", api=HfApi(endpoint=hub.url, token="hf_x"))
        assert len(hub.commits) == 1 and sorted(hub.commits[0]["added"]) == sorted(paths)
    shards = sorted(p.relative_to(output).as_posix() for p in (output / "fin_Latn" / "data").rglob("*.parquet"))
    assert paths[0] == "README.md" and set(shards) < set(paths) and "fin_Latn/README.md" in paths
    assert not [p for p in paths if p.startswith("dan_Latn/") or "_work" in p or p.endswith("stats.json")]
