"""`curate config import-fineweb2`: every shared FineWeb2 config converts into a valid config of ours."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from curate.language_configs.fineweb2 import convert_fineweb2, import_fineweb2, render_config, validate_text
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
    """The reviewed configs changed nothing but comments and the typical character mix of the model-free web-docs
    score (CJK and Thai punctuate and use digits unlike European languages): the lid.176 thresholds are the
    import's too (derived, or the documented default)."""
    for path in fineweb2_configs:
        imported = validate_text(import_fineweb2(path), path.stem)
        shipped = load_language_config(path.stem)
        shipped = dataclasses.replace(shipped, scorers=imported.scorers)
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
    config = load_language_config("vro_Latn")
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


def _off_unless_positive(value: float) -> float | None:
    return value if value > 0 else None


def test_every_sampled_fineweb2_config_keeps_its_values(fineweb2_configs, fineweb2_more_configs):
    """All 161 shared FineWeb2 configs import, validate and keep every value with datatrove's meaning: n-gram
    shares as they are (above 1 and 0 included), `dup_line_frac` null when 0 (off) or above 1 (never drops),
    `line_punct_thr` null when not above 0, word lengths and the letter share null when 0."""
    for path in fineweb2_configs + fineweb2_more_configs:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        config = validate_text(import_fineweb2(path), path.stem)
        repetition, quality, gopher = (config.filters.gopher_repetition, config.filters.fineweb_quality,
                                       config.filters.gopher_quality)
        assert config.lid.min_score["glotlid"] == raw["language_score"], path.stem
        assert repetition.max_top_ngram_char_share == {n: s for n, s in raw["top_n_grams"]}, path.stem
        assert repetition.max_dup_ngram_char_share == {n: s for n, s in raw["dup_n_grams"]}, path.stem
        dup_line = raw["dup_line_frac"]
        assert repetition.max_dup_line_share == (dup_line if 0 < dup_line <= 1 else None), path.stem
        assert quality.min_punct_line_share == _off_unless_positive(raw["line_punct_thr"]), path.stem
        assert quality.max_newline_token_ratio == raw["new_line_ratio"], path.stem
        assert gopher.min_mean_word_length == _off_unless_positive(raw["min_avg_word_length"]), path.stem
        assert gopher.max_mean_word_length == _off_unless_positive(raw["max_avg_word_length"]), path.stem
        assert gopher.min_alpha_token_share == _off_unless_positive(raw["max_non_alpha_words_ratio"]), path.stem
        assert gopher.stopwords == [str(w) for w in raw["stopwords"] or []], path.stem


def test_a_value_above_one_is_explained(fineweb2_more_configs):
    text = import_fineweb2(next(p for p in fineweb2_more_configs if p.stem == "dru_Latn"))
    assert ("max_dup_line_share: null  # FineWeb2 dup_line_frac 1.232: above 1, which no share of lines exceeds "
            "(never drops)") in text
    assert "max_top_ngram_char_share: {2: 1.177, 3: 1.373, 4: 1.56}" in text


FIN_RAW = yaml.safe_load((Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "fineweb2" / "configs"
                           / "fin_Latn.yml").read_text(encoding="utf-8"))


def test_stopword_with_a_comma_round_trips(tmp_path, fineweb2_raw):
    """FineWeb2's ksw_Mymr has a stopword with a comma; hand-written YAML broke on it."""
    raw = fineweb2_raw("fin_Latn") | {"stopwords": ["ဆ,", "a, b", "on", "- x", "#y", 'k"q', "z: w"]}
    path = tmp_path / "ksw_Mymr.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    config = validate_text(import_fineweb2(path), "ksw_Mymr")
    assert config.filters.gopher_quality.stopwords == raw["stopwords"]


STOPWORD_CHARACTERS = st.one_of(
    st.sampled_from([",", "'", '"', ":", "#", "-", " ", "[", "]", "{", "}", "&", "*", "!", "|", ">", "%", "@", "`",
                     "?", "\\", "\n", "\t", "\u00a0", "\u2028", "\ufeff", "𝔘", "😀", "𐌰"]),
    st.characters(exclude_categories=("Cs",)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(STOPWORD_CHARACTERS, min_size=1, max_size=12), min_size=1, max_size=8))
@example(["V\U000b7419\x14åT\U00044a5c"] + ["00000\x1f\x1f\x1f 0"] * 4)  # ruamel wrapped between two escapes
def test_any_stopword_round_trips(stopwords):
    """Commas, quotes, colons, `#`, leading dashes, YAML 1.1 booleans, control and non-BMP characters: every
    string is written so that it reads back as it was."""
    data = convert_fineweb2(FIN_RAW | {"stopwords": stopwords}, "fin_Latn")
    config = validate_text(render_config(data, "header"), "property")
    assert config.filters.gopher_quality.stopwords == stopwords


@pytest.mark.parametrize("code, tokenizer, package", [("kan_Knda", "IndicNLPTokenizer(kn)", "indic-nlp-library"),
                                                       ("bxr_Cyrl", "StanzaTokenizer(bxr)", "stanza")])
def test_the_imported_config_names_its_real_tokenizer(fineweb2_more_configs, tmp_path, monkeypatch, code, tokenizer,
                                                      package):
    """datatrove gives Kannada IndicNLP and Buryat Stanza, which curate does not install (optional extras): the
    config says so, and the run's check stops with one line naming the extra (or, for Stanza installed, how to
    fetch its model, which a run never downloads) instead of switching to another tokenizer."""
    from curate.blocks.words import TOKENIZER_PACKAGES, WordTokens
    from curate.errors import UserError
    from curate.pipeline.execution.graph import build_graph

    extra = next(p for p in TOKENIZER_PACKAGES.values() if p.pip == package)
    text = import_fineweb2(next(p for p in fineweb2_more_configs if p.stem == code))
    assert f"# Word tokenizer: datatrove's assignment for {code}: {tokenizer}.\n" in text
    assert f"# It needs the {package} package, not installed with curate (`pip install 'curate-corpus[{extra.extra}]'`)" in text
    croatian = import_fineweb2(next(p for p in fineweb2_more_configs if p.stem == "hrv_Latn"))
    assert "# Word tokenizer: datatrove's assignment for hrv_Latn: SpaCyTokenizer(hr).\n" in croatian
    monkeypatch.setenv("STANZA_RESOURCES_DIR", str(tmp_path / "stanza_resources"))  # empty: no model to be had
    if importlib.util.find_spec(extra.module) is None:
        message = (rf"^the word tokenizer for {code} needs a package curate does not install: datatrove's "
                   rf"{re.escape(tokenizer)} imports {extra.module}; pip install 'curate-corpus\[{extra.extra}\]'")
    elif package == "stanza":
        message = rf"^the word tokenizer for {code}: Stanza's tokenize model for 'bxr' is not in .*stanza_resources"
    else:
        assert WordTokens(validate_text(text, code)).check() is None  # installed: datatrove's tokenizer runs
        return
    with pytest.raises(UserError, match=message) as stopped:
        WordTokens(validate_text(text, code)).check()
    assert "\n" not in str(stopped.value)
    if code == "bxr_Cyrl":  # the run's own check, before any work, of every language at once: one line
        folder = tmp_path / "configs"
        folder.mkdir()
        (folder / f"{code}.yaml").write_text(text, encoding="utf-8")
        monkeypatch.setenv("CURATE_LANGUAGE_CONFIGS", str(folder))
        need = "stanza" if importlib.util.find_spec("stanza") is None else "Stanza's 'bxr' tokenize model"
        try:
            with pytest.raises(UserError, match=rf"^1 language\(s\) need what curate does not install: "
                                                rf"{re.escape(need)} for bxr_Cyrl: pip install "
                                                rf"'curate-corpus\[all-languages\]'.*--skip-unavailable"):
                build_graph(["fin", code], lid="ft176")
            assert list(build_graph(["fin", code], lid="ft176", skip_unavailable=True).languages) == ["fin_Latn"]
        finally:
            monkeypatch.delenv("CURATE_LANGUAGE_CONFIGS")


def test_stanza_model_is_looked_up_never_downloaded(tmp_path, monkeypatch, fineweb2_more_configs):
    """Stanza's model is found in its resources folder or named in one line; a run records its digest."""
    import hashlib

    from curate.blocks.words import WordTokens, stanza_model
    from curate.errors import UserError

    monkeypatch.setenv("STANZA_RESOURCES_DIR", str(tmp_path))
    with pytest.raises(UserError, match=r"^here: Stanza's tokenize model for 'bxr' is not in .*; fetch it once where "
                                        r"there is network: python -c \"import stanza; stanza.download\('bxr', "
                                        r"processors='tokenize'\)\""):
        stanza_model("bxr", "here")
    (tmp_path / "resources.json").write_text("{}", encoding="utf-8")
    (tmp_path / "bxr" / "tokenize").mkdir(parents=True)
    (tmp_path / "bxr" / "tokenize" / "bdt.pt").write_bytes(b"model")
    assert stanza_model("bxr", "here") == tmp_path / "bxr" / "tokenize"
    config = validate_text(import_fineweb2(next(p for p in fineweb2_more_configs if p.stem == "bxr_Cyrl")), "bxr")
    provenance = WordTokens(config).provenance()
    assert provenance["stanza_model:bxr"] == f"bdt.pt:{hashlib.sha256(b'model').hexdigest()}"
    assert provenance["word_tokenizer:bxr_Cyrl"] == "bxr_Cyrl"


def test_all_languages_extra_installs_every_tokenizer_package():
    import tomllib

    from curate.blocks.words import ALL_LANGUAGES_EXTRA, SPACY_PACKAGES, TOKENIZER_PACKAGES

    extras = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    packages = [*TOKENIZER_PACKAGES.values(), *SPACY_PACKAGES.values()]
    assert sorted(re.split(r"[<>=]", r)[0] for r in extras[ALL_LANGUAGES_EXTRA]) == sorted(p.pip for p in packages)
    assert [re.split(r"[<>=]", r)[0] for r in extras[SPACY_PACKAGES["vi"].extra]] == ["pyvi"]


def test_every_tokenizer_package_is_an_extra():
    import tomllib

    from curate.blocks.words import TOKENIZER_PACKAGES

    extras = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for package in TOKENIZER_PACKAGES.values():
        assert [re.split(r"[<>=]", r)[0] for r in extras[package.extra]] == [package.pip]
