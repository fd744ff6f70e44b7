"""The fastText quality classifier: training (API and `curate train-classifier`) and scoring held-out documents."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from curate.errors import UserError
from curate.blocks.score_quality import QualityClassifier, train_classifier
from curate.pipeline.cli.scorers import train_classifier as train_classifier_command


def scores(model: Path, texts: list[str], threshold: float | None = None) -> pa.Table:
    block = QualityClassifier(str(model), "__label__hq", threshold, "fin_Latn")
    block.check()
    return block(pa.table({"text": pa.array(texts, pa.string())}))


def test_fasttext_can_train() -> None:
    """The installed `fasttext` is the real one (fasttext-predict, which some LID wheels pull in, cannot train)."""
    import fasttext

    assert callable(getattr(fasttext, "train_supervised", None))


def test_classifier_scores_clean_above_spam_and_boilerplate(quality_model: Path, documents) -> None:
    clean = scores(quality_model, documents["held"])["quality_score"].to_numpy()
    spam = scores(quality_model, documents["spam"])["quality_score"].to_numpy()
    boilerplate = scores(quality_model, documents["boilerplate"])["quality_score"].to_numpy()
    assert np.median(clean) >= 0.9
    assert np.median(spam) <= 0.1 and np.median(boilerplate) <= 0.1
    assert clean.mean() - max(spam.mean(), boilerplate.mean()) >= 0.8
    assert ((clean >= 0) & (clean <= 1)).all()


def test_training_reports_held_out_precision_and_recall(quality_report, documents) -> None:
    positives = len(documents["train"])
    negatives = len(documents["train_spam"]) + len(documents["train_boilerplate"])
    assert quality_report.held_out_documents == math.ceil(positives * 0.1) + math.ceil(negatives * 0.1)
    assert quality_report.train_documents == positives + negatives - quality_report.held_out_documents
    assert quality_report.precision >= 0.95 and quality_report.recall >= 0.95


def test_threshold_drops_below_min_score(quality_model: Path, documents) -> None:
    texts = documents["held"][:10] + documents["spam"][:10]
    batch = scores(quality_model, texts, threshold=0.5)
    expected = [None if s >= 0.5 else "quality.score_low" for s in batch["quality_score"].to_pylist()]
    assert batch["drop_reason"].to_pylist() == expected
    assert expected[10:].count("quality.score_low") >= 9 and expected[:10].count(None) >= 9


def test_training_initialises_the_whole_embedding_matrix(documents, tmp_path: Path) -> None:
    """fastText initialises its input matrix one tenth per training thread, on memory it does not clear: trained
    with lr 0 (no updates), every value must be fastText's uniform(-1/dim, 1/dim) draw, not heap garbage."""
    import numpy as np

    from curate.blocks.lid import load_fasttext

    heap = [np.ones(1 << 18) for _ in range(40)]  # leave freed, dirty memory behind
    del heap
    for seed in range(3):
        path = tmp_path / f"{seed}.bin"
        train_classifier(documents["train"][:100], documents["train_boilerplate"][:100], path, dim=8,
                         buckets=5_000, lr=0.0, seed=seed)
        matrix = load_fasttext.__wrapped__(str(path)).get_input_matrix()
        assert np.abs(matrix).max() <= 1 / 8 and (matrix == 0).mean() < 0.001


def test_a_label_the_model_lacks_is_one_line(quality_model: Path) -> None:
    block = QualityClassifier(str(quality_model), "__label__good", None, "fin_Latn")
    with pytest.raises(UserError) as error:
        block.check()
    message = str(error.value)
    assert "\n" not in message
    assert "fin_Latn scorers.quality.model" in message and "no label '__label__good'" in message
    assert "__label__hq" in message and "__label__lq" in message


def test_train_classifier_command(documents, tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("train-classifier")(train_classifier_command)
    app.command("unused")(lambda: None)  # two commands: typer keeps the command name
    clean, junk = documents["train"], documents["train_spam"] + documents["train_boilerplate"]
    pq.write_table(pa.table({"text": clean}), tmp_path / "good.parquet")
    (tmp_path / "web").mkdir()
    half = len(junk) // 2
    for index, part in enumerate((junk[:half], junk[half:])):
        pq.write_table(pa.table({"body": part, "id": list(range(len(part)))}), tmp_path / "web" / f"{index}.parquet")
    out = tmp_path / "models" / "quality.bin"
    arguments = ["train-classifier", "--positive", str(tmp_path / "good.parquet"), "--negative", str(tmp_path / "web"),
                 "--out", str(out), "--text-column", "body", "--dim", "16", "--buckets", "20000", "--lr", "0.5"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 1 and isinstance(result.exception, UserError)  # good.parquet has no `body`
    assert "cannot read column 'body'" in str(result.exception) and "\n" not in str(result.exception)
    pq.write_table(pa.table({"body": clean}), tmp_path / "good.parquet")
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    held = math.ceil(len(clean) * 0.1) + math.ceil(len(junk) * 0.1)
    assert (f"wrote {out}: trained on {len(clean) + len(junk) - held} documents ({len(clean)} positive, "
            f"{len(junk)} negative in all)") in result.output
    found = re.search(rf"held out {held}: precision ([\d.]+), recall ([\d.]+) for __label__hq", result.output)
    assert found and float(found.group(1)) >= 0.95 and float(found.group(2)) >= 0.95, result.output
    assert f"use it: scorers: {{quality: {{model: {out}, label: __label__hq}}}}" in result.output
    held_scores = scores(out, documents["held"][:20] + documents["spam"][:20])["quality_score"].to_numpy()
    assert held_scores[:20].mean() - held_scores[20:].mean() >= 0.8
