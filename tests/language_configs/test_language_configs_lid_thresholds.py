"""Per-language lid.176 thresholds (`curate calibrate --lid ft176`): recomputed from ../shared's known text they are
the shipped values, each keeps the documented share of its language's documents, and `import-fineweb2` writes
the derived value or the documented default, saying which."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from curate.language_configs import lid_thresholds
from curate.language_configs.fineweb2 import import_fineweb2, validate_text
from curate.language_configs.lid_thresholds import (CEILING, FLOOR, FT176_DEFAULT_SCORE, MIN_KEPT, RULE,
                                                    confusions, derived_thresholds, describe_reference,
                                                    set_config_threshold)
from curate.language_configs.reference import BANNERS, NAVIGATION, read_reference, web_documents
from curate.language_configs.schema import SHIPPED_DIR, load_language_config
from curate.pipeline.calibration.lid import calibrate_lid
from curate.language_configs.validate import ConfigError

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
TEXT = SHARED / "data" / "text"
REFERENCES = {"dan_Latn": [TEXT / "flores200" / "dan_Latn.txt"],
              "fin_Latn": [TEXT / "flores200" / "fin_Latn.txt", *sorted((TEXT / "fi").glob("*.txt"))]}


def sentences(paths: list[Path]) -> list[str]:
    """As the CLI reads a reference: every line of every document is a sentence."""
    return [line for document in read_reference(paths) for line in document.splitlines()]


@pytest.mark.parametrize("code", sorted(REFERENCES))
def test_recomputed_threshold_is_the_shipped_one(code):
    paths = REFERENCES[code]
    derived = calibrate_lid(code, sentences(paths), describe_reference(paths))
    assert derived == derived_thresholds()[(code, "ft176")]
    assert load_language_config(code).lid.min_score["ft176"] == derived.min_score
    assert derived.min_score == round(max(FLOOR, min(CEILING, derived.median - derived.sigma)), 3)
    assert derived.kept >= MIN_KEPT * derived.assigned
    config_text = (SHIPPED_DIR / f"{code}.yaml").read_text(encoding="utf-8")
    assert f"ft176: {derived.min_score:g}}}  # ft176: {RULE} of 1,000 web-like docs of {derived.reference}" in config_text


def test_fixed_figures_of_the_derivation():
    """The table's figures, so that a change of the document builder or the model shows here first."""
    table = {code: row.min_score for (code, _), row in derived_thresholds().items()}
    assert table.items() >= {"dan_Latn": 0.765, "deu_Latn": 0.9, "ekk_Latn": 0.853, "eng_Latn": 0.9, "fin_Latn": 0.9,
                             "hrv_Latn": 0.378, "kan_Knda": 0.9, "mar_Deva": 0.9, "nob_Latn": 0.689, "rus_Cyrl": 0.9,
                             "swe_Latn": 0.9, "tat_Cyrl": 0.799, "afr_Latn": 0.469, "nno_Latn": 0.526,
                             "swh_Latn": 0.366}.items()
    # 12 from flores200/ (and fi/), 87 from FLORES-200 half 0 (`curate calibrate --lid ft176 --lang all`)
    assert len(table) == 99 and all(FLOOR <= value <= CEILING for value in table.values())
    assert {code for (code, _), row in derived_thresholds().items() if row.reference.startswith("flores200-half0/")} \
        == set(table) - {"dan_Latn", "deu_Latn", "ekk_Latn", "eng_Latn", "fin_Latn", "hrv_Latn", "kan_Knda",
                         "mar_Deva", "nob_Latn", "rus_Cyrl", "swe_Latn", "tat_Cyrl"}
    confused = {code: row.labelled_as for (code, _), row in confusions().items()}
    assert confused["bos_Latn"] == "hrv_Latn" and confused["zsm_Latn"] == "ind_Latn" and len(confused) == 16
    assert not set(confused) & set(table)


def test_every_shipped_config_has_the_derived_value_or_says_it_has_the_default():
    for path in sorted(SHIPPED_DIR.glob("*_*.yaml")):
        code, text = path.stem, path.read_text(encoding="utf-8")
        derived = derived_thresholds().get((code, "ft176"))
        threshold = load_language_config(code).lid.min_score["ft176"]
        if derived is None:
            assert threshold == FT176_DEFAULT_SCORE, code
            assert f"no known text of {code} was scored to derive one (docs/configs.md)" in text, code
        else:
            assert threshold == derived.min_score and derived.kept >= MIN_KEPT * derived.assigned, code
            assert FLOOR <= threshold <= CEILING


def test_web_documents_are_web_length_with_boilerplate_around_the_text():
    pool = (TEXT / "flores200" / "fin_Latn.txt").read_text(encoding="utf-8").splitlines()
    documents = web_documents(pool, 200, seed=3)
    assert documents == web_documents(pool, 200, seed=3) != web_documents(pool, 200, seed=4)
    words = sorted(len(d.split()) for d in documents)
    assert words[0] >= 20 and 100 <= words[len(words) // 2] <= 300 and words[-1] >= 700
    boilerplate = set(NAVIGATION) | set(BANNERS)
    with_boilerplate = [d for d in documents if boilerplate & set(d.splitlines())]
    assert 0.6 <= len(with_boilerplate) / len(documents) < 1
    assert any(line in pool for line in documents[0].splitlines()) or any(s in documents[0] for s in pool)


def test_import_writes_the_derived_value_or_the_default_with_why(fineweb2_more_configs):
    croatian = next(p for p in fineweb2_more_configs if p.stem == "hrv_Latn")
    text = import_fineweb2(croatian)
    assert validate_text(text, "hrv").lid.min_score["ft176"] == 0.378
    assert (f"ft176: 0.378}}  # ft176: {RULE} of 1,000 web-like docs of flores200/hrv_Latn.txt (keeps 78.0%; "
            "docs/configs.md)") in text
    tuvan = import_fineweb2(next(p for p in fineweb2_more_configs if p.stem == "tyv_Cyrl"))  # no FLORES text
    assert validate_text(tuvan, "tyv").lid.min_score["ft176"] == FT176_DEFAULT_SCORE
    assert ("# ft176: the documented default, datatrove's LanguageFilter one: no known text of tyv_Cyrl was scored "
            "to derive one (docs/configs.md)") in tuvan


def test_cli_derives_and_writes_into_the_table_and_the_config(tmp_path, monkeypatch):
    from curate.pipeline.cli.main import app

    monkeypatch.setattr(lid_thresholds, "TABLE", tmp_path / "lid_thresholds.tsv")
    monkeypatch.setenv("CURATE_LANGUAGE_CONFIGS", str(tmp_path))
    config = tmp_path / "dan_Latn.yaml"
    shipped = (SHIPPED_DIR / "dan_Latn.yaml").read_text(encoding="utf-8")
    config.write_text(shipped.replace("ft176: 0.765", "ft176: 0.5"), encoding="utf-8")
    derived_thresholds.cache_clear()
    try:
        result = CliRunner().invoke(app, ["calibrate", "--lid", "ft176", "--write", "--lang", "dan_Latn",
                                          str(REFERENCES["dan_Latn"][0])])
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith(f"dan_Latn lid.min_score.ft176: 0.765 — {RULE} over 1,000 web-like "
                                        "documents of flores200/dan_Latn.txt: 99.5% assigned to dan_Latn")
        assert config.read_text(encoding="utf-8") == shipped, "only the threshold line changes"
        assert list(derived_thresholds()) == [("dan_Latn", "ft176")]
    finally:
        monkeypatch.undo()
        derived_thresholds.cache_clear()


def test_set_config_threshold_changes_one_line():
    text = (SHIPPED_DIR / "fin_Latn.yaml").read_text(encoding="utf-8")
    updated = set_config_threshold(text, "ft176", 0.7, "a note")
    changed = [(a, b) for a, b in zip(text.splitlines(), updated.splitlines()) if a != b]
    assert changed == [(changed[0][0], "  min_score: {glotlid: 0.764, ft176: 0.7}  # a note")]
    assert yaml.safe_load(updated)["lid"]["min_score"] == {"glotlid": 0.764, "ft176": 0.7}


@pytest.mark.parametrize("code, reference, message", [
    ("fin", "fin_Latn.txt", r"needs a code like fin_Latn"),
    ("fin_Latn", "eng_Latn.txt", r"ft176 assigns only 0 of 1000 documents of the reference to fin_Latn "
                                 r"\(eng_Latn 1000\): is the reference text of fin_Latn\?"),
])
def test_calibration_mistakes_are_one_line(code, reference, message):
    with pytest.raises(ConfigError, match=message):
        calibrate_lid(code, sentences([TEXT / "flores200" / reference]), reference)
    with pytest.raises(ConfigError, match="derived for ft176, not 'glotlid'"):
        calibrate_lid("fin_Latn", ["Hyvää päivää."], "x", model="glotlid")


def test_cli_derives_every_language_of_a_folder(tmp_path, monkeypatch):
    """`--lang all`: each lid.176 language with a sentence file gets the shipped row; one lid.176 gives to
    another language is recorded as a confusion (Bosnian → Croatian), and keeps the default."""
    from curate.pipeline.cli.main import app

    folder = tmp_path / "text"
    folder.mkdir()
    for stem in ("afr_Latn", "bos_Latn"):
        (folder / f"{stem}.txt").write_text((TEXT / "flores200-half0" / f"{stem}.txt").read_text(encoding="utf-8"))
    shipped = derived_thresholds()[("afr_Latn", "ft176")]
    monkeypatch.setattr(lid_thresholds, "TABLE", tmp_path / "lid_thresholds.tsv")
    monkeypatch.setattr(lid_thresholds, "CONFUSIONS", tmp_path / "lid_confusions.tsv")
    derived_thresholds.cache_clear()
    try:
        result = CliRunner().invoke(app, ["calibrate", "--lid", "ft176", "--write", "--lang", "all", str(folder)])
        assert result.exit_code == 0, result.output
        row = derived_thresholds()[("afr_Latn", "ft176")]
        assert row == dataclasses.replace(shipped, reference="text/afr_Latn.txt")
        assert list(derived_thresholds()) == [("afr_Latn", "ft176")]
        assert confusions()[("bos_Latn", "ft176")].labelled_as == "hrv_Latn"
        assert "bos_Latn: keeps the default: ft176 assigns only 4 of 1000 documents" in result.stdout
    finally:
        monkeypatch.undo()
        derived_thresholds.cache_clear()
