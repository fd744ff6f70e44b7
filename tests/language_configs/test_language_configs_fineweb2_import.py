"""`curate config import-fineweb2`: every shared FineWeb2 config converts into a valid config of ours."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import yaml

from curate.language_configs.fineweb2 import import_fineweb2, validate_text
from curate.language_configs.schema import load_language_config
from curate.language_configs.validate import ConfigError


def test_every_shared_config_imports(fineweb2_configs, fineweb2_raw):
    for path in fineweb2_configs:
        code = path.stem
        config = validate_text(import_fineweb2(path), code)
        raw = fineweb2_raw(code)
        assert config.code == code
        assert config.lid.min_score["glotlid"] == raw["language_score"]
        assert config.filters.gopher_repetition.max_top_ngram_char_share == {n: s for n, s in raw["top_n_grams"]}
        assert config.filters.gopher_quality.stopwords == raw["stopwords"]
        assert config.filters.gopher_quality.min_alpha_token_share == raw["max_non_alpha_words_ratio"]


def test_shipped_configs_are_the_imports(fineweb2_configs):
    """The reviewed configs changed nothing but comments, Danish's lid.176 threshold and the typical character
    mix of the model-free web-docs score (CJK and Thai punctuate and use digits unlike European languages)."""
    for path in fineweb2_configs:
        imported = validate_text(import_fineweb2(path), path.stem)
        shipped = load_language_config(path.stem)
        shipped = dataclasses.replace(shipped, scorers=imported.scorers)
        if path.stem == "dan_Latn":
            assert shipped.lid.min_score == {"glotlid": 0.3, "ft176": 0.5}
            shipped = dataclasses.replace(shipped, lid=imported.lid)
        assert shipped == imported, path.stem


def test_import_maps_zero_to_null_and_names(fineweb2_configs):
    text = import_fineweb2(next(p for p in fineweb2_configs if p.stem == "deu_Latn"))
    assert "min_punct_line_share: null  # FineWeb2 line_punct_thr" in text
    assert "min_mean_word_length: null  # FineWeb2 min_avg_word_length" in text
    assert text.startswith("# German (deu_Latn), imported from FineWeb2's configs/deu_Latn.yml")
    assert "name: German\n" in text


def test_imported_config_of_a_new_language_loads(tmp_path, monkeypatch, fineweb2_configs):
    """Any of FineWeb2's languages: a Võro file (Estonian's figures) imported into a user folder loads by code."""
    source = tmp_path / "vro_Latn.yml"
    shutil.copy(next(p for p in fineweb2_configs if p.stem == "ekk_Latn"), source)
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "vro_Latn.yaml").write_text(import_fineweb2(source), encoding="utf-8")
    monkeypatch.setenv("CURATE_LANGUAGE_CONFIGS", str(folder))
    load_language_config.cache_clear()
    try:
        config = load_language_config("vro_Latn")
    finally:
        load_language_config.cache_clear()
    assert config.name == "Võro" and "ft176" not in config.lid.min_score  # lid.176 has no Võro


@pytest.mark.parametrize("name, content, message", [
    ("finnish.yml", "language_score: 0.5", "the file name must be <iso639-3>_<Script>.yml"),
    ("fin_Latn.yml", "language_score: 0.5", "not a FineWeb2 language config, missing dup_line_frac"),
    ("fin_Latn.yml", "[unclosed", "not valid YAML"),
    ("fin_Latn.yml", "- a list", "expected a mapping"),
])
def test_import_mistakes_are_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        import_fineweb2(path)
    with pytest.raises(ConfigError, match="cannot read"):
        import_fineweb2(tmp_path / "missing_Latn.yml")


def test_import_output_is_plain_yaml(fineweb2_configs):
    for path in fineweb2_configs:
        data = yaml.safe_load(import_fineweb2(path))
        assert set(data) == {"language", "script", "name", "lid", "word_tokenizer", "filters", "formatters"}
