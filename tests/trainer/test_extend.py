"""Extending a byte-level BPE tokenizer (built here from ../shared/data/text) with Finnish tokens: every
base id kept, no text longer, the English replay sample unchanged, Finnish shorter, decoding exact."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from trainer_testdata import FLORES, HELDOUT_FI, read_lines

from curate.trainer.extend import REPORT, count_words, extend_tokenizer, split_lines
from curate.trainer.tokenizer import TokenizerError, load_tokenizer

ADD = 256


@pytest.fixture(scope="module")
def english(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The replay sample (English FLORES, first 800 sentences) and other English (the rest)."""
    lines = read_lines(FLORES / "eng_Latn.txt")
    path = tmp_path_factory.mktemp("replay") / "eng.txt"
    path.write_text("\n".join(lines[:800]) + "\n", encoding="utf-8")
    return path, lines[800:]


@pytest.fixture(scope="module")
def extended(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path, curated_dir: Path,
             english: tuple[Path, list[str]]):
    out = tmp_path_factory.mktemp("tok-fin")
    report = extend_tokenizer(str(tokenizer_dir), [curated_dir], out, add=ADD, keep_unchanged=[english[0]],
                              heldout_texts={"fin FLORES": HELDOUT_FI}, max_documents=2000, seed=0)
    return report, load_tokenizer(str(tokenizer_dir)), load_tokenizer(str(out)), out


def _ids(tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False)]


def test_base_ids_merges_and_special_tokens_are_kept(extended) -> None:
    report, base, new, out = extended
    base_vocab, new_vocab = base.get_vocab(), new.get_vocab()
    assert all(new_vocab[token] == index for token, index in base_vocab.items())
    assert len(new) == len(base) + ADD == report.vocab_size
    assert sorted(new_vocab[t] for t in report.added_tokens) == list(range(len(base), len(base) + ADD))
    assert (new.eos_token, new.eos_token_id) == (base.eos_token, base.eos_token_id)
    base_merges = json.loads(base.backend_tokenizer.to_str())["model"]["merges"]
    new_merges = json.loads(new.backend_tokenizer.to_str())["model"]["merges"]
    assert new_merges[: len(base_merges)] == base_merges
    assert len(new_merges) == len(base_merges) + report.new_merges
    assert json.loads((out / REPORT).read_text())["added_tokens"] == report.added_tokens


def test_no_text_gets_more_tokens_and_decoding_round_trips(extended, fi_documents: list[str],
                                                          en_documents: list[str]) -> None:
    _, base, new, _ = extended
    texts = fi_documents + en_documents + read_lines(HELDOUT_FI)
    before, after = _ids(base, texts), _ids(new, texts)
    assert all(len(a) <= len(b) for a, b in zip(after, before))
    assert sum(map(len, after)) < 0.95 * sum(map(len, before))
    assert [new.decode(ids) for ids in after] == texts


def test_the_replay_sample_is_unchanged_and_other_english_nearly(extended, english) -> None:
    report, base, new, _ = extended
    path, other = english
    sample, heldout = split_lines(read_lines(path), seed=0)
    assert len(sample) == 640 and len(heldout) == 160
    assert _ids(new, sample) == _ids(base, sample)
    assert report.replay_changed["eng.txt"]["sample"] == 0.0
    assert report.skipped_for_replay > 0  # merges Finnish wanted that would have changed English
    changed = sum(a != b for a, b in zip(_ids(new, other), _ids(base, other))) / len(other)
    assert changed < 0.05
    assert report.replay_changed["eng.txt"]["heldout"] < 0.05
    tokens = [sum(map(len, _ids(t, other))) for t in (base, new)]
    assert tokens[1] >= 0.995 * tokens[0]


def test_finnish_fertility_drops(extended) -> None:
    report, *_ = extended
    fin = report.fertility["fin FLORES"]
    assert fin["after"]["tokens_per_word"] < 0.93 * fin["before"]["tokens_per_word"]
    assert fin["after"]["bytes_per_token"] > fin["before"]["bytes_per_token"] / 0.93
    english = report.fertility["eng.txt (held-out)"]
    assert english["after"]["tokens_per_word"] == pytest.approx(english["before"]["tokens_per_word"], rel=0.01)
    assert "| fin FLORES |" in report.table()


def test_words_count_with_their_rehydration_weight(extended) -> None:
    _, base, _, _ = extended
    counts = count_words(base.backend_tokenizer, [("kissa istuu", 3), ("kissa", 1)])
    assert counts == Counter({"kissa": 4, "Ġistuu": 3})


def test_a_wordpiece_tokenizer_is_refused_in_one_line(tmp_path: Path, curated_dir: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    wordpiece = Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    wordpiece.pre_tokenizer = pre_tokenizers.Whitespace()
    wordpiece.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(TokenizerError, match=r"is a WordPiece tokenizer: extend-tokenizer extends byte-level BPE"):
        extend_tokenizer(str(tmp_path / "tokenizer.json"), [curated_dir], tmp_path / "out", add=10)


def test_extend_tokenizer_through_the_curate_command(tokenizer_dir: Path, curated_dir: Path, tmp_path: Path,
                                                     english) -> None:
    out = tmp_path / "tok-fin"
    args = [sys.executable, "-m", "curate", "extend-tokenizer", str(tokenizer_dir), "--from", str(curated_dir),
            "--add", "16", "--out", str(out), "--keep-unchanged", str(english[0]), "--max-documents", "300",
            "--heldout-documents", "50"]
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "| language (held-out shards) |" in done.stdout
    assert "768 -> 784 tokens (+16, ids 768..783)" in done.stdout
    assert "eng.txt: sample 0.0% of lines changed" in done.stdout
    assert len(load_tokenizer(str(out))) == 784


def test_a_missing_base_is_one_line(curated_dir: Path, tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from curate.trainer.cli import extend_tokenizer as command

    app = typer.Typer()
    app.command("extend-tokenizer")(command)
    app.command("other")(lambda: None)  # keep the subcommand name
    result = CliRunner().invoke(app, ["extend-tokenizer", str(tmp_path / "nothing"), "--from", str(curated_dir),
                                      "--add", "1", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot load base tokenizer '{tmp_path / 'nothing'}'")
