"""The variants' corpora: which documents each curation step keeps, with which weight, in which order;
sampling for large corpora; reuse and rebuild."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ablate_testdata import CODE, DUMPS, build_run_output, clean_documents

from curate.errors import UserError
from curate.blocks.keys import document_keys
from curate.pipeline.ablation import VARIANTS, build_corpora, parse_variants
from curate.pipeline.ablation.corpora import BYTES_PER_TOKEN_BOUND

ALL_TOKENS = 10**9  # a budget larger than the test corpus: nothing is sampled


@pytest.fixture(scope="module")
def corpora(run_output, tmp_path_factory):
    out = tmp_path_factory.mktemp("corpora")
    return build_corpora(run_output.language_root, list(VARIANTS), ALL_TOKENS, out)


def read(corpus) -> pa.Table:
    return pq.read_table(corpus.path)


def kinds(table: pa.Table) -> Counter:
    """Documents per part of the test data (the id says which: `<urn:uuid:spam-000001>`)."""
    return Counter(i.split(":")[-1].split("-")[0] for i in table["id"].to_pylist())


def test_each_variant_keeps_what_its_step_keeps(corpora, run_output) -> None:
    built = run_output
    assert kinds(read(corpora["raw"])) == {"clean": built.clean, "dup": built.duplicates, "spam": built.spam,
                                           "menu": built.boilerplate, "foreign": built.foreign}
    assert kinds(read(corpora["lid"])) == {"clean": built.clean, "dup": built.duplicates, "spam": built.spam,
                                           "menu": built.boilerplate}
    assert kinds(read(corpora["dedup"])) == {"clean": built.clean, "spam": built.spam, "menu": built.boilerplate}
    for name in ("filtered", "rehydrated"):
        assert kinds(read(corpora[name])) == {"clean": built.clean}
    for corpus in corpora.values():
        table = read(corpus)
        assert corpus.documents == table.num_rows and corpus.fraction == 1.0
        assert corpus.text_bytes == sum(len(t.encode()) for t in table["text"].to_pylist())


def test_weights_only_in_the_rehydrated_variant(corpora, run_output) -> None:
    clean = clean_documents()
    for name in ("raw", "lid", "dedup", "filtered"):
        assert set(read(corpora[name])["weight"].to_pylist()) == {1}
    table = read(corpora["rehydrated"])
    expected = {f"<urn:uuid:clean-{i:06d}>": (text, w) for i, (text, w) in enumerate(zip(clean, run_output.weights))}
    got = {i: (t, w) for i, t, w in zip(*(table[c].to_pylist() for c in ("id", "text", "weight")))}
    assert got == expected
    assert corpora["rehydrated"].weighted_documents == sum(run_output.weights) > run_output.clean


def test_documents_are_in_key_order(corpora) -> None:
    """Hash order, not stage-file order: kept and removed documents are interleaved from the start."""
    table = read(corpora["raw"])
    keys = document_keys(table["id"]).to_numpy()
    assert np.all(np.diff(keys.astype(np.float64)) >= 0)
    first = kinds(table.slice(0, 500))
    assert first["foreign"] > 50 and first["clean"] > 100  # the removed file is not read last
    assert pq.ParquetFile(corpora["raw"].path).metadata.num_row_groups == -(-table.num_rows // 2000)


def test_large_variants_are_sampled_by_key(run_output, tmp_path: Path) -> None:
    tokens = 50_000
    sampled = build_corpora(run_output.language_root, ["raw", "filtered"], tokens, tmp_path)
    whole = build_corpora(run_output.language_root, ["raw", "filtered"], ALL_TOKENS, tmp_path / "all")
    for name in ("raw", "filtered"):
        corpus = sampled[name]
        assert 0 < corpus.fraction < 1
        ids = set(read(corpus)["id"].to_pylist())
        all_ids = read(whole[name])["id"].to_pylist()
        keys = document_keys(all_ids).to_numpy()
        expected = {i for i, k in zip(all_ids, keys) if k < np.uint64(int(corpus.fraction * 2**64))}
        assert ids == expected  # exactly the documents whose key is below the threshold
        # about tokens × BYTES_PER_TOKEN_BOUND bytes of text: enough for the run, and no more
        assert corpus.text_bytes == pytest.approx(tokens * BYTES_PER_TOKEN_BOUND, rel=0.15)


def test_corpora_are_reused_until_an_input_changes(tmp_path: Path) -> None:
    built = build_run_output(tmp_path / "out", spam=50, boilerplate=20)
    first = build_corpora(built.language_root, ["lid", "filtered"], ALL_TOKENS)
    mtimes = {n: os.stat(c.path).st_mtime_ns for n, c in first.items()}
    again = build_corpora(built.language_root, ["lid", "filtered"], ALL_TOKENS)
    assert again == first and {n: os.stat(c.path).st_mtime_ns for n, c in again.items()} == mtimes
    shard = next((built.language_root / "data" / DUMPS[1]).glob("*.parquet"))
    table = pq.read_table(shard)
    pq.write_table(table.slice(0, 10), shard)  # a rerun of the pipeline released fewer documents
    changed = build_corpora(built.language_root, ["lid", "filtered"], ALL_TOKENS)
    assert changed["lid"] == first["lid"]
    assert changed["filtered"].documents == first["filtered"].documents - table.num_rows + 10
    assert Path(changed["filtered"].path).parent == built.language_root / "ablation" / "corpora"


def test_materialized_release_and_missing_weight_column(tmp_path: Path) -> None:
    """Copies of a document (a release written with weight-1 copies) are one document of the filtered
    variant and add up to its weight in the rehydrated one; shards without `weight` count 1."""
    root = tmp_path / CODE
    shard = root / "data" / DUMPS[0] / "00000.parquet"
    shard.parent.mkdir(parents=True)
    pq.write_table(pa.table({"id": ["a", "b", "a", "c", "a", "d"], "text": ["A", "B", "A", "C", "A", ""],
                             "weight": [1, 1, 1, 1, 1, 1]}), shard)
    plain = root / "data" / DUMPS[1] / "00000.parquet"
    plain.parent.mkdir(parents=True)
    pq.write_table(pa.table({"id": ["e"], "text": ["E"]}), plain)
    corpora = build_corpora(root, ["filtered", "rehydrated"], ALL_TOKENS)
    assert dict(zip(*(read(corpora["filtered"])[c].to_pylist() for c in ("text", "weight")))) == \
        {"A": 1, "B": 1, "C": 1, "E": 1}  # the empty document is left out
    assert dict(zip(*(read(corpora["rehydrated"])[c].to_pylist() for c in ("text", "weight")))) == \
        {"A": 3, "B": 1, "C": 1, "E": 1}


def test_user_mistakes_are_one_line(tmp_path: Path, run_output) -> None:
    with pytest.raises(UserError, match="does not exist: give the --output folder"):
        build_corpora(tmp_path / "nowhere" / CODE, ["raw"], ALL_TOKENS)
    released_only = tmp_path / CODE
    (released_only / "data").mkdir(parents=True)
    with pytest.raises(UserError, match="no stage-1 files under .*_work/stage1"):
        build_corpora(released_only, ["lid"], ALL_TOKENS)
    with pytest.raises(UserError, match="no released shards under"):
        build_corpora(released_only, ["filtered"], ALL_TOKENS)
    with pytest.raises(UserError, match="unknown variant.*clean.*choose from raw, lid, dedup, filtered, rehydrated"):
        parse_variants("raw,clean")
    assert parse_variants("filtered, raw") == ["raw", "filtered"]  # pipeline order
