"""`curate train` / `curate train-tokenizer` as typer commands: one-line errors, a full run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import typer
from trainer_testdata import FI_DIR, REPO
from typer.testing import CliRunner

from curate.trainer.cli import train, train_tokenizer

app = typer.Typer()
app.command("train")(train)
app.command("train-tokenizer")(train_tokenizer)
runner = CliRunner()


def flat(text: str) -> str:
    """The output without the error box's frame and line breaks."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_mix_mistakes_are_usage_errors(curated_dir: Path, tmp_path: Path) -> None:
    cases = {
        "a=0.5,b": "has no share",
        f"{curated_dir}=0.5,{curated_dir}=0.4": "shares sum to 0.9, not 1",
        f"{tmp_path}/missing.parquet": "does not exist",
    }
    for mix, message in cases.items():
        result = runner.invoke(app, ["train", "--mix", mix, "--model-config", "tiny"])
        assert result.exit_code == 2, result.output
        assert message in flat(result.output) and "Traceback" not in result.output


def test_missing_tokenizer_is_one_line(curated_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--mix", str(curated_dir), "--model-config", "tiny",
                                 "--tokenizer", str(tmp_path / "no-tokenizer"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: tokenizer folder '{tmp_path / 'no-tokenizer'}' does not exist"]


def test_tokenizer_and_training_through_the_cli(curated_dir: Path, tmp_path: Path) -> None:
    tok = tmp_path / "tok"
    result = runner.invoke(app, ["train-tokenizer", str(FI_DIR), "--out", str(tok),
                                 "--vocab-size", "400", "--max-documents", "3000"])
    assert result.exit_code == 0, result.output
    assert f"byte-level BPE with 400 tokens saved to {tok}" in result.output
    out = tmp_path / "run"
    args = ["train", "--mix", str(curated_dir), "--tokenizer", str(tok), "--model-config", "tiny",
            "--seq-len", "32", "--micro-batch-size", "4", "--steps", "3", "--warmup-steps", "1",
            "--out", str(out), "--no-progress", "--log-every", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "3 steps (steps); trained tokens fin_Latn 384 (100.00%)" in result.output
    assert json.loads((out / "result.json").read_text())["steps"] == 3
    assert (out / "checkpoints" / "step_000003" / "model" / "config.json").is_file()


def test_importing_the_cli_loads_neither_torch_nor_transformers() -> None:
    code = "import sys, trainer.cli; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["False", "False"]
