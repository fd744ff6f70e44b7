"""FineWeb2's 1,929 configs ship with curate (`fineweb2_configs.json.gz`): `--lang bos` works with no import step,
the reviewed configs and `$CURATE_LANGUAGE_CONFIGS` take precedence, `config import-fineweb2` takes a folder."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate.language_configs.fineweb2 import import_fineweb2, validate_text
from curate.language_configs.fineweb2_bundle import ATTRIBUTION, BUNDLE, build_bundle, bundled_configs, read_folder
from curate.language_configs.schema import (available_languages, configured_languages, is_bundled,
                                            load_language_config, resolve_language)
from curate.pipeline.cli.main import app



ROOT = Path(__file__).resolve().parents[2]
CONFIGS_ALL = ROOT.parent / "shared" / "reference" / "fineweb2" / "configs-all"


def test_the_bundle_is_fineweb2s_folder_unchanged():
    """Rebuilt from the folder it is byte for byte the shipped file: every config, its values as FineWeb2 wrote
    them, and the attribution."""
    assert BUNDLE.read_bytes() == build_bundle(CONFIGS_ALL)
    configs = bundled_configs()
    assert len(configs) == 1929 and configs == read_folder(CONFIGS_ALL)
    assert "Apache License 2.0" in ATTRIBUTION and "huggingface/fineweb-2" in ATTRIBUTION
    assert BUNDLE.stat().st_size < 2_000_000  # no tracked file over 2 MB


def test_the_bundle_is_package_data():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "curate.language_configs"]
    assert any(fnmatch.fnmatch(BUNDLE.name, pattern) for pattern in patterns)


@pytest.mark.parametrize("typed, code", [("bos", "bos_Latn"), ("bs", "bos_Latn"), ("swh", "swh_Latn"),
                                          ("nno_Latn", "nno_Latn"), ("ms", "zsm_Latn"), ("fin", "fin_Latn")])
def test_any_fineweb2_language_resolves(typed, code):
    assert resolve_language(typed) == code


def test_a_shipped_language_is_its_import():
    """A bundled language's config is exactly what `config import-fineweb2` makes of its file."""
    for code in ("bos_Latn", "swh_Latn", "vie_Latn", "aai_Latn"):
        assert is_bundled(code)
        assert load_language_config(code) == validate_text(import_fineweb2(CONFIGS_ALL / f"{code}.yml"), code)
    assert "ft176" not in load_language_config("aai_Latn").lid.min_score  # lid.176 does not label it


def test_reviewed_configs_and_user_folders_take_precedence(tmp_path, monkeypatch):
    assert set(configured_languages()) < set(available_languages()) and len(available_languages()) == 1929
    assert not is_bundled("fin_Latn")
    assert load_language_config("fin_Latn").lid.min_score["ft176"] == 0.9  # the reviewed file's
    text = import_fineweb2(CONFIGS_ALL / "bos_Latn.yml").replace("language_score", "x")
    text = re.sub(r"glotlid: [0-9.]+", "glotlid: 0.123", text, count=1)
    (tmp_path / "bos_Latn.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("CURATE_LANGUAGE_CONFIGS", str(tmp_path))
    assert not is_bundled("bos_Latn")
    assert load_language_config("bos").lid.min_score["glotlid"] == 0.123


def test_import_takes_a_folder(tmp_path, monkeypatch):
    source = tmp_path / "fineweb2"
    source.mkdir()
    for code in ("bos_Latn", "nno_Latn", "swh_Latn"):
        (source / f"{code}.yml").write_text((CONFIGS_ALL / f"{code}.yml").read_text(encoding="utf-8"))
    result = CliRunner().invoke(app, ["config", "import-fineweb2", str(source), "--out", str(tmp_path / "mine")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["bos_Latn.yaml", "nno_Latn.yaml",
                                                                     "swh_Latn.yaml"]
    monkeypatch.setenv("CURATE_LANGUAGE_CONFIGS", str(tmp_path / "mine"))
    assert not is_bundled("nno_Latn") and load_language_config("nno").code == "nno_Latn"
    without_out = CliRunner().invoke(app, ["config", "import-fineweb2", str(source)])
    assert without_out.exit_code != 0 and "give --out FOLDER" in str(without_out.exception)
