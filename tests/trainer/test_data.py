"""Data: source resolution, weights, epochs, the token-share mixture, lossless packing, resume.

Uses a byte tokenizer (ids = UTF-8 bytes, EOS = 256) so the token stream can be decoded back to
the documents it came from.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from trainer_testdata import BYTE_EOS, byte_tokenize, finnish_weights

from curate.trainer.config import SourceSpec
from curate.trainer.data import (DataError, Mixture, ParquetSource, SourceExhausted, build_stream,
                          resolve_parquet_files)


def source(path: Path, **kwargs) -> ParquetSource:
    return ParquetSource(SourceSpec(str(path), 1.0), byte_tokenize, BYTE_EOS, **kwargs)


def decode(ids: list[int]) -> str:
    assert ids[-1] == BYTE_EOS
    return bytes(ids[:-1]).decode("utf-8")


def drain(src: ParquetSource) -> list[tuple[str, int]]:
    """Every document until the source is exhausted, with the pass it was emitted in."""
    out = []
    while True:
        try:
            text = decode(src.next_document())
        except SourceExhausted:
            return out
        out.append((text, src.pass_index))


def test_resolve_prefers_data_and_skips_work(curated_dir: Path, tmp_path: Path) -> None:
    files = resolve_parquet_files(curated_dir)
    assert [f.relative_to(curated_dir).as_posix() for f in files] == [
        "data/CC-MAIN-2024-10/00000.parquet", "data/CC-MAIN-2024-10/00001.parquet"]
    plain = tmp_path / "plain"
    (plain / "_work").mkdir(parents=True)
    pq.write_table(pa.table({"text": ["a"]}), plain / "b.parquet")
    pq.write_table(pa.table({"text": ["x"]}), plain / "_work" / "a.parquet")
    assert resolve_parquet_files(plain) == [plain / "b.parquet"]
    with pytest.raises(DataError, match="does not exist"):
        resolve_parquet_files(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .parquet files"):
        resolve_parquet_files(tmp_path / "empty")


def test_weights_are_repetitions_per_epoch_and_rates_within_one(tmp_path: Path) -> None:
    """Weight w, largest weight K = 3: exactly w copies per epoch, in w different passes; one pass
    (a third of the epoch) holds each document with probability w / 3."""
    n = 1200
    texts = [f"document {i}" for i in range(n)]
    weights = [i % 4 for i in range(n)]  # 0, 1, 2, 3
    path = tmp_path / "w.parquet"
    pq.write_table(pa.table({"text": texts, "weight": weights}), path, row_group_size=250)
    src = source(path, repeat=False)
    assert src.passes_per_epoch == 3
    emitted = drain(src)
    counts = Counter(text for text, _ in emitted)
    assert all(counts[f"document {i}"] == weights[i] for i in range(n))
    assert len(emitted) == sum(weights)
    passes: dict[str, list[int]] = {}
    for text, pass_index in emitted:
        passes.setdefault(text, []).append(pass_index)
    assert all(len(set(p)) == len(p) for p in passes.values())  # never twice in one pass
    first_pass = Counter(int(text.split()[1]) % 4 for text, p in emitted if p == 0)
    per_class = n // 4
    assert first_pass[0] == 0 and first_pass[3] == per_class  # rates 0 and 1 are exact
    assert abs(first_pass[1] / per_class - 1 / 3) < 0.1
    assert abs(first_pass[2] / per_class - 2 / 3) < 0.1


def test_new_epoch_is_logged_and_resamples(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    texts = [f"d{i}" for i in range(60)]
    path = tmp_path / "w.parquet"
    pq.write_table(pa.table({"text": texts, "weight": [1 + i % 2 for i in range(60)]}), path)
    src = source(path, repeat=True)
    per_epoch = 90  # 30 x 1 + 30 x 2
    with caplog.at_level(logging.INFO, logger="curate.trainer"):
        first = [decode(src.next_document()) for _ in range(per_epoch)]
        assert src.epoch == 0
        second = [decode(src.next_document()) for _ in range(per_epoch)]
    assert src.epoch == 1
    assert "epoch 1 complete (90 documents); starting epoch 2" in caplog.text
    assert Counter(first) == Counter(second)  # the same repetitions every epoch...
    assert first != second  # ...placed in different passes


def test_no_repeat_without_weights_is_one_pass(replay_file: Path, en_documents: list[str]) -> None:
    src = source(replay_file, repeat=False)
    assert Counter(text for text, _ in drain(src)) == Counter(en_documents)
    with pytest.raises(SourceExhausted):
        src.next_document()


def test_the_seed_orders_the_documents(tmp_path: Path) -> None:
    """Two seeds read the same documents (the same tokens, with weights) in different orders: row groups
    and the rows within them are permuted per pass; a seed gives the same order every time."""
    texts = [f"document {i}" for i in range(1000)]
    path = tmp_path / "w.parquet"
    pq.write_table(pa.table({"text": texts, "weight": finnish_weights(len(texts))}), path, row_group_size=100)
    orders = {seed: [text for text, _ in drain(source(path, repeat=False, seed=seed))] for seed in (0, 1)}
    assert orders[0] != orders[1]
    assert Counter(orders[0]) == Counter(orders[1])
    assert sum(map(len, orders[0])) == sum(map(len, orders[1]))  # the same token count per epoch
    assert orders[0] == [text for text, _ in drain(source(path, repeat=False, seed=0))]
    indices = [int(text.split()[1]) for text in orders[0]]
    assert indices != sorted(indices)  # not file order


def test_shards_split_documents_disjointly(replay_file: Path, en_documents: list[str]) -> None:
    shards = [[t for t, _ in drain(source(replay_file, repeat=False, shard=s, num_shards=3))]
              for s in range(3)]
    assert sorted(sum(shards, [])) == sorted(en_documents)
    assert all(abs(len(s) - len(en_documents) / 3) <= 1 for s in shards)


def test_mixture_shares_are_exact_to_one_document(curated_dir: Path, replay_file: Path) -> None:
    specs = [SourceSpec(str(curated_dir), 0.75), SourceSpec(str(replay_file), 0.25)]
    sources = [ParquetSource(s, byte_tokenize, BYTE_EOS) for s in specs]
    mixture = Mixture(sources, [0.75, 0.25])
    longest = 0
    for _ in range(3000):
        source_index, ids = mixture.next_document()
        longest = max(longest, len(ids))
        total = sum(mixture.tokens)
        # the source furthest behind was chosen, so no source is ever more than a document off
        for tokens, share in zip(mixture.tokens, mixture.shares):
            assert abs(tokens - share * total) <= longest
    total = sum(mixture.tokens)
    assert total > 500_000
    assert abs(mixture.tokens[0] / total - 0.75) <= longest / total < 0.002
    assert sources[1].epoch >= 1  # the small English source was repeated, the mixture held


def test_packing_is_lossless_and_counts_sources(curated_dir: Path, replay_file: Path) -> None:
    specs = [SourceSpec(str(curated_dir), 0.75), SourceSpec(str(replay_file), 0.25)]
    stream = build_stream(specs, byte_tokenize, BYTE_EOS, seq_len=128)
    windows, counts = zip(*(stream.next_sequence() for _ in range(400)))
    assert all(w.shape == (129,) for w in windows)
    joined = np.concatenate([windows[0]] + [w[1:] for w in windows[1:]])  # windows overlap by 1
    reference = Mixture([ParquetSource(s, byte_tokenize, BYTE_EOS) for s in specs], [0.75, 0.25])
    tokens: list[int] = []
    owners: list[int] = []
    while len(tokens) < len(joined):
        source_index, ids = reference.next_document()
        tokens += ids
        owners += [source_index] * len(ids)
    assert joined.tolist() == tokens[: len(joined)]  # no token lost, added or reordered
    # every target (all tokens but the first) is counted once, for the source it came from
    assert np.sum(counts, axis=0).tolist() == np.bincount(owners[1 : len(joined)]).tolist()
    assert int(np.sum(counts)) == 400 * 128


def test_stream_resumes_exactly_from_its_state(curated_dir: Path, replay_file: Path) -> None:
    specs = [SourceSpec(str(curated_dir), 0.6), SourceSpec(str(replay_file), 0.4)]

    def make():
        return build_stream(specs, byte_tokenize, BYTE_EOS, seq_len=100, shard=1, num_shards=2)

    straight = make()
    for _ in range(2000):  # long enough for the English source to start a second epoch
        straight.next_sequence()
    state = straight.state_dict()
    expected = [straight.next_sequence()[0].tolist() for _ in range(300)]
    resumed = make()
    resumed.load_state_dict(state)
    assert [resumed.next_sequence()[0].tolist() for _ in range(300)] == expected
    assert state["mixture"]["sources"]["replay"]["epoch"] >= 1


def test_curated_weights_reach_the_stream(curated_dir: Path, fi_documents: list[str]) -> None:
    src = source(curated_dir, repeat=False)
    expected: Counter[str] = Counter()
    for doc, weight in zip(fi_documents, finnish_weights(len(fi_documents))):
        expected[doc] += weight
    assert src.passes_per_epoch == 3
    assert Counter(text for text, _ in drain(src)) == expected
