"""Decontamination: normalisation, n-gram and paragraph matching on FLORES-200 items planted in real Finnish text,
common n-grams, and reading evaluation sets (text, JSONL, Parquet, a Hugging Face dataset from a local cache)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.blocks.decontamination import (ITEM, ITEMS, MATCH, NgramIndex, Tokenizer, _windows, count_entries,
                                          decontamination_block, sequence_hash)
from curate.blocks.evaluation_sets import content_fingerprint, load_set, load_sets, split_specs
from curate.errors import UserError

FIN = Tokenizer.for_language("fin_Latn", "Latn")


@pytest.fixture(scope="module")
def flores(shared):
    return load_set(str(shared / "data/text/flores200/fin_Latn.txt"))


@pytest.fixture(scope="module")
def index(flores):
    return NgramIndex.build([flores], FIN)


@pytest.fixture(scope="module")
def news(shared) -> list[str]:
    """Finnish news sentences that are not FLORES (WMT newstest 2015)."""
    lines = (shared / "data/text/fi/wmt-newstest2015.fi.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if len(line.split()) >= 8]


def _long(flores, skip: int = 0) -> str:
    return [i for i in flores.items if len(i.split()) >= 20][skip]


def _short(flores) -> str:
    return next(i for i in flores.items if 5 <= len(FIN.lines(i)[0]) < 13)


def test_tokens_fold_case_punctuation_and_whitespace_and_keep_lines():
    assert FIN.lines("Hän sanoi: \"KISSA-koira\"\t10,5 km/h!\nUusi  RIVI…") == [
        ["hän", "sanoi", "kissa", "koira", "10", "5", "km", "h"], ["uusi", "rivi"]]
    assert FIN.lines("Ｆｕｌｌｗｉｄｔｈ ÄÖ") == [["fullwidth", "äö"]]


def test_window_hashes_are_the_polynomial_of_their_tokens_wherever_they_start():
    hashes = np.array([FIN.hash_many([w])[0].hashes[0] for w in "yksi kaksi kolme neljä viisi".split()], np.uint64)
    windows = _windows(hashes, np.arange(3), np.full(3, 3))
    assert int(windows[1]) == sequence_hash(hashes[1:4])
    assert len(set(windows.tolist())) == 3


def test_planted_items_are_found_and_partial_quotes_are_not(flores, index, news):
    item, other, short = _long(flores), _long(flores, 1), _short(flores)
    words = item.split()
    article = " ".join(news[:4])
    documents = {
        "whole": f"{article}\n{item}",
        "inside": f"{article} {item} {' '.join(news[4:8])}",
        "case_punctuation": f"{article}\n" + "; ".join(words).upper() + "!!",
        "line_break": f"{article}\n{' '.join(words[:7])}\n\n{' '.join(words[7:])}",
        "short_paragraph": f"{article}\n{short}\n{' '.join(news[8:10])}",
        "twelve_words": f"{article}\n{' '.join(other.split()[:12])}",
        "short_inside_paragraph": f"{article} {short} {news[10]}",
        "clean": " ".join(news[10:20]),
    }
    found = dict(zip(documents, index.match_entries(FIN.hash_many(list(documents.values())))))
    assert {name for name, entries in found.items() if len(entries)} == {
        "whole", "inside", "case_punctuation", "line_break", "short_paragraph"}
    assert {index.items[index.entry_item(int(e))] for e in found["line_break"]} == {item}
    assert index.items[index.entry_item(int(found["short_paragraph"][0]))] == short


def test_block_marks_the_set_and_records_the_item_and_shared_words(flores, news):
    item = _long(flores)
    block = decontamination_block([flores], "fin_Latn", "Latn")
    out = block(pa.table({"text": [news[0] + "\n" + item.upper(), " ".join(news[1:12])]})).to_pylist()
    assert out[0]["drop_reason"] == f"decontamination.{flores.name}" and out[1]["drop_reason"] is None
    assert out[0][ITEM] == item and out[1][ITEM] is None
    shared_words = out[0][MATCH].split()
    assert len(shared_words) == 13 and " ".join(shared_words) in " ".join(t for line in FIN.lines(item) for t in line)
    assert out[0][ITEMS] == [flores.items.index(item)]
    assert "fin_Latn" in repr(block) and flores.fingerprint in repr(block)


def test_common_ngrams_are_counted_once_per_document_and_taken_out(flores, news, tmp_path):
    """An item whose 13-gram is boilerplate in many pages: above K it is ignored and removes nothing."""
    boilerplate = "Tämän sivun sisältö on suojattu tekijänoikeuslailla eikä sitä saa kopioida ilman kirjallista lupaa"
    path = tmp_path / "common.txt"
    path.write_text(boilerplate + " tänään\n" + _long(flores) + "\n", encoding="utf-8")
    eval_set = load_set(str(path))
    index = NgramIndex.build([eval_set], FIN)
    pages = [f"{news[i]}\n{boilerplate}\n{boilerplate}" for i in range(5)] + [news[6] + " " + _long(flores)]
    counts = count_entries(index, FIN, pages)
    boiler_entry = next(e for e, c in counts.items() if c == 5)
    assert sorted(counts.values())[-1] == 5  # repeats inside a page count once
    common = [e for e, c in counts.items() if c > 3]
    trimmed = index.without(np.array(common), {index.entry_text(e, FIN): counts[e] for e in common})
    assert trimmed.ignored == {index.entry_text(boiler_entry, FIN): 5}
    assert "tekijänoikeuslailla" in index.entry_text(boiler_entry, FIN)
    found = trimmed.match_entries(FIN.hash_many(pages))
    assert [bool(len(f)) for f in found] == [False] * 5 + [True]
    assert trimmed.digest() != index.digest()


def test_items_under_min_words_are_not_indexed(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("kyllä\nei ole\nkolme sanaa tässä\n", encoding="utf-8")
    index = NgramIndex.build([load_set(str(path))], FIN)
    assert (index.short_items, len(index.paragraphs), len(index.ngrams)) == (2, 1, 0)


def test_sets_from_jsonl_and_parquet_columns(flores, tmp_path):
    rows = [{"question": flores.items[0], "choices": [flores.items[1], flores.items[2]]},
            {"question": flores.items[3], "choices": None}]
    jsonl = tmp_path / "mmlu_fi.jsonl"
    jsonl.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    parquet = tmp_path / "xnli.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    questions, choices = load_sets([f"{jsonl}#question", f"named={parquet}#choices"])
    assert (questions.name, questions.items) == ("mmlu_fi", (flores.items[0], flores.items[3]))
    assert (choices.name, choices.items) == ("named", (flores.items[1], flores.items[2]))
    assert choices.fingerprint == content_fingerprint((flores.items[1], flores.items[2]))
    assert split_specs([f"{jsonl}#question,{parquet}#choices", f"{jsonl}#question"]) == [
        f"{jsonl}#question", f"{parquet}#choices"]
    with pytest.raises(UserError, match="no column 'answer'; it has choices, question"):
        load_set(f"{jsonl}#answer")
    with pytest.raises(UserError, match="name the text column"):
        load_set(str(parquet))
    with pytest.raises(UserError, match="two evaluation sets are named 'mmlu_fi'"):
        load_sets([f"{jsonl}#question", f"{jsonl}#choices"])


def _cache_dataset(home, items: list[str]) -> None:
    """What `datasets.load_dataset("evalorg/fin-eval", "fin", split="test")` leaves in the cache after an online
    load: `<HF_HOME>/datasets/evalorg___fin-eval/fin/0.0.0/<hash>/` (built here from a Parquet file, offline)."""
    from pathlib import Path

    from datasets.packaged_modules.parquet.parquet import Parquet

    source = Path(home) / "test.parquet"
    pq.write_table(pa.table({"sentence": items}), source)
    builder = Parquet(cache_dir=str(Path(home) / "datasets"), config_name="fin", config_id="fin",
                      data_files={"test": str(source)}, dataset_name="evalorg___fin-eval", hash="0" * 16)
    builder.download_and_prepare()
    for arrow in Path(builder.cache_dir).glob("*.arrow"):
        arrow.rename(arrow.with_name(arrow.name.replace("evalorg___fin-eval-", "fin-eval-")))


_LOAD = ("import sys; from curate.blocks.evaluation_sets import load_set; from curate.errors import UserError\n"
         "try:\n    s = load_set(sys.argv[1]); print(s.name, len(s.items), s.items[0])\n"
         "except UserError as e:\n    print('error:', e)")


def test_hugging_face_dataset_from_the_local_cache_offline(flores, tmp_path):
    home = tmp_path / "hf"
    home.mkdir()
    _cache_dataset(home, list(flores.items[:7]))
    env = {"HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    found = subprocess.run([sys.executable, "-c", _LOAD, "hf:evalorg/fin-eval:fin:test#sentence"], env=env,
                           capture_output=True, text=True, timeout=300)
    assert found.stdout.strip() == f"fin-eval_fin_test 7 {flores.items[0]}", found.stderr[-2000:]
    missing = subprocess.run([sys.executable, "-c", _LOAD, "hf:evalorg/not-cached:fin:test#sentence"], env=env,
                             capture_output=True, text=True, timeout=300)
    lines = missing.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: evaluation set evalorg/not-cached (config fin, split test)")
    assert "load it once with network" in lines[0] and "HF_HOME" in lines[0]
