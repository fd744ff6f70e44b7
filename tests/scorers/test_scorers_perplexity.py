"""KenLM perplexity: CCNet's normalisation and formula, a tiny model trained with lmplz on real Finnish, and
`curate train-kenlm`."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from curate.errors import UserError
from curate.blocks.score_perplexity import (
    Perplexity,
    _load_kenlm,
    normalise_line,
    normalised_lines,
    perplexity,
    train_kenlm,
)
from curate.language_configs.scorers import PerplexityConfig
from curate.pipeline.cli.scorers import train_kenlm as train_kenlm_command


def test_ccnet_normalisation() -> None:
    # lowercase, accents stripped (NFD without combining marks), digits → 0, CCNet's punctuation table, controls out
    assert normalise_line("  Ähtäri 2024: „Hyvä“ – «ok»…\x07  ") == 'ahtari 0000: "hyva" - "ok"...'
    assert normalise_line("Ｋｏｋｏ：１２％！") == "ｋｏｋｏ:00%!"  # fullwidth digits are digits; ：％！ mapped
    assert normalise_line("Çà et là — ’quoted’") == "ca et la  -  'quoted'"
    assert normalised_lines("Eka rivi.\n\n   \nToka  rivi!") == ["eka rivi.", "toka  rivi!"]


def test_perplexity_is_ccnets_formula(kenlm_model: Path) -> None:
    model = _load_kenlm(str(kenlm_model))
    text = "Hallitus esitti uuden lain.\n\nSe tulee voimaan 1.1.2025 koko maassa."
    # KenLM's per-token log10 probabilities: one per word and one for </s> of each line
    tokens = [p for line in normalised_lines(text) for p, _, _ in model.full_scores(line)]
    assert len(tokens) == 4 + 1 + 6 + 1  # "lain." and "maassa." are one word each
    assert perplexity(model, text) == round(10 ** (-sum(tokens) / len(tokens)), 1)
    assert math.isnan(perplexity(model, " \n\n"))


def test_clean_finnish_has_half_the_perplexity_of_junk(kenlm_model: Path, documents) -> None:
    model = _load_kenlm(str(kenlm_model))
    median = {kind: float(np.median([perplexity(model, d) for d in documents[kind]]))
              for kind in ("held", "spam", "boilerplate", "salad")}
    assert median["held"] <= 0.5 * median["spam"], median
    assert median["held"] <= 0.5 * median["boilerplate"], median
    # word order alone (the same words shuffled) is a weaker signal for a model of 100 k words
    assert median["held"] <= 0.75 * median["salad"], median


def test_block_adds_perplexity_and_drops_above_the_threshold(kenlm_model: Path, documents) -> None:
    texts = documents["held"][:10] + documents["boilerplate"][:10] + [""]
    batch = pa.table({"text": pa.array(texts, pa.string())})
    block = Perplexity(PerplexityConfig(model=str(kenlm_model), max_perplexity=12_000.0), "fin_Latn")
    block.check()
    out = block(batch)
    values = out["perplexity"].to_pylist()
    model = _load_kenlm(str(kenlm_model))
    assert values[:-1] == [perplexity(model, t) for t in texts[:-1]] and math.isnan(values[-1])
    expected = ["perplexity.perplexity_high" if v > 12_000 else None for v in values]
    assert out["drop_reason"].to_pylist() == expected  # NaN passes
    assert expected[10:20].count("perplexity.perplexity_high") >= 9 and expected[:10].count(None) >= 7
    provenance = block.provenance()
    assert list(provenance) == [f"kenlm_model:{kenlm_model}"] and len(provenance[f"kenlm_model:{kenlm_model}"]) == 64


def test_train_kenlm_command_writes_arpa_that_scores_like_the_binary(documents, tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("train-kenlm")(train_kenlm_command)
    app.command("unused")(lambda: None)
    part = documents["train"][:300]
    (tmp_path / "a.txt").write_text("\n".join(part[:150]) + "\n", encoding="utf-8")
    pq.write_table(pa.table({"text": part[150:]}), tmp_path / "b.parquet")
    arpa = tmp_path / "fin.arpa"
    result = CliRunner().invoke(app, ["train-kenlm", "--lang", "fin", "--text", str(tmp_path / "a.txt"),
                                      str(tmp_path / "b.parquet"), "--out", str(arpa), "--order", "3"])
    assert result.exit_code == 0, result.output
    lines = sum(len(normalised_lines(d)) for d in part)
    assert f"wrote {arpa}: 3-gram KenLM model of" in result.output and f"in {lines:,} lines" in result.output
    assert "use it in language_configs/fin_Latn.yaml: scorers: {perplexity: {model:" in result.output
    assert arpa.read_text(encoding="utf-8").startswith("\\data\\\nngram 1=")
    # the same text through the API, as the binary format: same probabilities
    binary = train_kenlm(part[:150] + part[150:], tmp_path / "fin.binary", order=3).path
    assert not binary.read_bytes().startswith(b"\\data\\")
    held = documents["held"][:10]
    assert [perplexity(_load_kenlm(str(arpa)), d) for d in held] == \
        [perplexity(_load_kenlm(str(binary)), d) for d in held]


def test_train_kenlm_mistakes_are_one_line(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("train-kenlm")(train_kenlm_command)
    app.command("unused")(lambda: None)
    (tmp_path / "a.txt").write_text("kissa istuu puussa\n", encoding="utf-8")
    cases = {
        ("--lang", "xyz", "--text", str(tmp_path / "a.txt")): "unknown language 'xyz'",
        ("--lang", "fin", "--text", str(tmp_path / "missing.txt")): "does not exist",
        ("--lang", "fin", "--text", str(tmp_path / "*.json")): "matches no file",
        ("--lang", "fin", "--text", str(tmp_path / "a.txt"), "--memory", "banana"):
            "lmplz failed (exit 1): Failed to parse banana",
    }
    for arguments, message in cases.items():
        result = CliRunner().invoke(app, ["train-kenlm", *arguments, "--out", str(tmp_path / "m.arpa")])
        assert isinstance(result.exception, UserError), result.output
        assert message in str(result.exception) and "\n" not in str(result.exception)
    with pytest.raises(UserError, match="no words to train"):
        train_kenlm([" "], tmp_path / "m.arpa")


def test_missing_lmplz_says_make_lmplz(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(UserError) as error:
        train_kenlm(["kissa istuu puussa"], tmp_path / "m.arpa")
    assert "lmplz is not on PATH" in str(error.value) and "run `make lmplz`" in str(error.value)
    assert "\n" not in str(error.value)
