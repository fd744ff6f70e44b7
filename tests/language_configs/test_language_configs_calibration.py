"""`curate calibrate`: Finnish reference documents built from ../shared/data/text/fi give thresholds within a
stated tolerance of the shipped (FineWeb2) fin_Latn config."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from reference_documents import documents_from_sentences

from curate.language_configs.fineweb2 import validate_text
from curate.language_configs.reference import read_reference
from curate.language_configs.schema import load_language_config
from curate.language_configs.validate import ConfigError
from curate.pipeline.calibration.config import calibrate

SHARED = Path(__file__).resolve().parents[2].parent / "shared"

# key → largest allowed |calibrated − shipped| (the shipped values are FineWeb2's, tuned on web data)
TOLERANCE = {
    "gopher_repetition.max_dup_line_share": 0.01,
    "gopher_repetition.max_top_ngram_char_share": 0.06,
    "gopher_repetition.max_dup_ngram_char_share": 0.01,
    "fineweb_quality.min_punct_line_share": 0.03,
    "fineweb_quality.max_newline_token_ratio": 0.05,
    "gopher_quality.min_mean_word_length": 1,
    "gopher_quality.max_mean_word_length": 1,
    "gopher_quality.min_alpha_token_share": 0.04,
}
MIN_SHARED_STOPWORDS = 12  # of FineWeb2's 21 Finnish stopwords


@pytest.fixture(scope="module")
def finnish_reference(tmp_path_factory):
    sentences = [line for path in sorted((SHARED / "data" / "text" / "fi").glob("*.txt"))
                 for line in path.read_text(encoding="utf-8").splitlines()]
    documents = documents_from_sentences(sentences, seed=1)
    path = tmp_path_factory.mktemp("reference") / "fi_reference.txt"
    path.write_text("\n\n".join(documents), encoding="utf-8")
    return path, documents


@pytest.fixture(scope="module")
def calibrated(finnish_reference):
    return calibrate("fin_Latn", [finnish_reference[0]])


def test_calibrated_config_is_valid_and_commented(calibrated):
    config = validate_text(calibrated, "calibrated")
    assert config.code == "fin_Latn" and config.name == "Finnish"
    assert "# calibrated: 10th percentile" in calibrated
    assert calibrated.startswith("# Finnish (fin_Latn), calibrated by `curate calibrate` on 692 reference documents")


def test_calibrated_thresholds_are_within_tolerance_of_the_shipped_config(calibrated):
    ours = yaml.safe_load(calibrated)["filters"]
    shipped = load_language_config("fin_Latn").filters
    for key, tolerance in TOLERANCE.items():
        section, name = key.split(".")
        value, reference = ours[section][name], getattr(getattr(shipped, section), name)
        if isinstance(reference, dict):
            assert set(value) == set(reference), key
            for n in reference:
                assert abs(value[n] - reference[n]) <= tolerance, (key, n, value[n], reference[n])
        else:
            assert abs(value - reference) <= tolerance, (key, value, reference)


def test_language_independent_settings_are_fineweb2s(calibrated):
    config = validate_text(calibrated, "calibrated")
    shipped = load_language_config("fin_Latn")
    assert config.lid == shipped.lid  # kept from the existing config
    for name in ("min_word_count", "max_word_count", "max_hash_token_ratio", "max_ellipsis_token_ratio",
                 "max_bullet_line_share", "max_ellipsis_line_share", "min_stopword_count"):
        assert getattr(config.filters.gopher_quality, name) == getattr(shipped.filters.gopher_quality, name)
    assert config.filters.fineweb_quality.max_dup_line_char_share == 0.1
    assert config.formatters == shipped.formatters


def test_stopwords_are_the_most_frequent_words(calibrated):
    stopwords = yaml.safe_load(calibrated)["filters"]["gopher_quality"]["stopwords"]
    assert len(stopwords) == 20 and stopwords[:3] == ["ja", "on", "että"]
    shared = set(stopwords) & set(load_language_config("fin_Latn").filters.gopher_quality.stopwords)
    assert len(shared) >= MIN_SHARED_STOPWORDS, sorted(shared)


def test_reference_formats_read_the_same_documents(finnish_reference, tmp_path):
    _, documents = finnish_reference
    jsonl = tmp_path / "ref.jsonl"
    jsonl.write_text("".join(json.dumps({"text": d, "id": i}) + "\n" for i, d in enumerate(documents)), "utf-8")
    parquet = tmp_path / "ref.parquet"
    pq.write_table(pa.table({"text": documents}), parquet)
    assert read_reference([jsonl]) == documents
    assert read_reference([parquet]) == documents
    assert read_reference([finnish_reference[0]]) == documents
    assert len(read_reference([jsonl, parquet])) == 2 * len(documents)


def test_calibration_mistakes_are_one_line(tmp_path, finnish_reference):
    small = tmp_path / "small.txt"
    small.write_text("Yksi lause.\n\nToinen lause.", encoding="utf-8")
    with pytest.raises(ConfigError, match="at least 50 reference documents"):
        calibrate("fin_Latn", [small])
    with pytest.raises(ConfigError, match="reference file .* not found"):
        calibrate("fin_Latn", [tmp_path / "missing.txt"])
    with pytest.raises(ConfigError, match="a code like fin_Latn"):
        calibrate("finnish", [finnish_reference[0]])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"body": "x"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="needs a `text` field"):
        read_reference([bad])


def test_a_reference_that_is_not_utf8_is_one_line(tmp_path):
    """`curate calibrate` on a Windows-1252 text file ended in UnicodeDecodeError."""
    import subprocess
    import sys

    latin = tmp_path / "latin.txt"
    latin.write_bytes("Hyvää päivää.\n\nJäätelö on hyvää.".encode("cp1252"))
    with pytest.raises(ConfigError, match=r"latin.txt: not UTF-8 text \(byte 3 is not\)"):
        read_reference([latin])
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(ConfigError, match="broken.jsonl.gz: cannot be read as a reference file"):
        read_reference([broken])
    result = subprocess.run([sys.executable, "-m", "curate", "calibrate", "--lang", "fin_Latn",
                             str(latin)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {latin}: not UTF-8 text (byte 3 is not): convert it "
                                                  "first, e.g. `iconv -f windows-1252 -t utf-8 latin.txt`"]
