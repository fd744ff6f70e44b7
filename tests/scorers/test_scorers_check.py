"""A configured scorer whose model cannot be had stops the run before it starts, with one line naming the file and
how to provide it; models come from a path (beside the language configs too) or the Hugging Face Hub cache."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from curate.errors import UserError
from curate.blocks.model_files import resolve_file
from curate.blocks.score_quality import QualityClassifier
from curate.blocks.scorers import scorer_blocks
from curate.language_configs.schema import load_language_config
from curate.language_configs.scorers import ScorersConfig
from curate.language_configs.validate import from_dict


def check_all(section: dict) -> None:
    config = load_language_config("fin_Latn")
    config = dataclasses.replace(config, scorers=from_dict(ScorersConfig, section, "scorers"))
    for block in scorer_blocks(config):
        block.check()


def one_line_error(section: dict) -> str:
    with pytest.raises(UserError) as error:
        check_all(section)
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.fixture()
def hub_cache(tmp_path: Path, monkeypatch) -> Path:
    """An empty HF cache, offline (as in every test): only files placed in it can be had."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return tmp_path / "hub"


def place_in_hub_cache(cache: Path, repo: str, filename: str, source: Path, commit: str = "a" * 40) -> None:
    """Lay a file out as `hf_hub_download` leaves it in the cache (refs/main → snapshots/<commit>/<file>)."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    (folder / "snapshots" / commit / filename).parent.mkdir(parents=True)
    shutil.copy(source, folder / "snapshots" / commit / filename)


def test_missing_model_files_name_the_key_and_the_fix() -> None:
    message = one_line_error({"quality": {"model": "models/fin-quality.bin"}})
    assert message.startswith("fin_Latn scorers.quality.model: no file 'models/fin-quality.bin' (looked beside "
                              "the language configs and in the working directory)")
    assert "curate train-classifier" in message
    message = one_line_error({"perplexity": {"model": "/nowhere/fin.binary"}})
    assert message == ("fin_Latn scorers.perplexity.model: no file '/nowhere/fin.binary'; train one with "
                       "`curate train-kenlm`, or give a path or hf://owner/repo/file.binary")
    message = one_line_error({"toxicity": {"classifier": {"model": "toxic.bin"}}})
    assert message.startswith("fin_Latn scorers.toxicity.classifier.model: no file 'toxic.bin'")


def test_unreachable_hub_is_one_line(hub_cache: Path) -> None:
    message = one_line_error({"quality": {"model": "hf://someone/quality-models/fin.bin"}})
    assert message.startswith("cannot load hf://someone/quality-models/fin.bin (fin_Latn scorers.quality.model) "
                              "from the Hugging Face Hub (")
    assert message.endswith("connect to the Hub once (it is then cached), or download the file and give its path")
    assert "is not a Hub file" in one_line_error({"perplexity": {"model": "hf://someone/fin.binary"}})


def test_hub_models_load_from_the_cache_offline(hub_cache: Path, quality_model: Path, kenlm_model: Path,
                                                documents) -> None:
    place_in_hub_cache(hub_cache, "someone/fin-scorers", "quality/fin.bin", quality_model)
    snapshot = hub_cache / "models--someone--fin-scorers" / "snapshots" / ("a" * 40)
    (snapshot / "lm").mkdir()
    shutil.copy(kenlm_model, snapshot / "lm" / "fin.bin")
    check_all({"quality": {"model": "hf://someone/fin-scorers/quality/fin.bin"},
               "perplexity": {"model": f"hf://someone/fin-scorers@{'a' * 40}/lm/fin.bin"}})
    texts = pa.table({"text": documents["held"][:5]})
    from_hub = QualityClassifier("hf://someone/fin-scorers/quality/fin.bin", "__label__hq")(texts)
    local = QualityClassifier(str(quality_model), "__label__hq")(texts)
    assert from_hub["quality_score"].to_pylist() == local["quality_score"].to_pylist()


def test_relative_paths_are_found_beside_the_language_configs(tmp_path: Path, monkeypatch, quality_model: Path):
    (tmp_path / "models").mkdir()
    shutil.copy(quality_model, tmp_path / "models" / "beside-configs.bin")
    monkeypatch.setenv("CURATE_LANGUAGE_CONFIGS", str(tmp_path))
    path = resolve_file("models/beside-configs.bin", "test", "hint")
    assert path == tmp_path / "models" / "beside-configs.bin"


def test_broken_model_files_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken.bin").write_text("not a model", encoding="utf-8")
    message = one_line_error({"quality": {"model": str(tmp_path / "broken.bin")}})
    assert message.startswith(f"fin_Latn scorers.quality.model: cannot load {tmp_path / 'broken.bin'} as a "
                              "fastText model (")
    message = one_line_error({"perplexity": {"model": str(tmp_path / "broken.bin")}})
    assert message.startswith(f"fin_Latn scorers.perplexity.model: cannot load {tmp_path / 'broken.bin'} as a "
                              "KenLM model (")
