"""Candidate edges and connected components against an in-memory union–find, on graphs built to be hard:
long chains (large diameter), big stars, and many small chained clusters."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from dedup_helpers import as_dict, assignments, planted_signatures, reference_clusters, write_files

from curate import dedup
from curate.dedup.reduce import aggregate
from curate.dedup.shuffle import PAIR
from curate.language_configs.minhash import DedupConfig

CONFIG = DedupConfig(exact=False)


def test_key_table_merges_chunks_by_key():
    chunks = [np.array(list(zip(a, b)), PAIR) for a, b in ([(7, 3, 7), (40, 11, 20)], [(7, 3, 9), (30, 10, 50)])]
    table = aggregate(iter(chunks))
    assert table.keys.tolist() == [3, 7, 9]
    assert table.mins.tolist() == [10, 20, 50] and table.maxs.tolist() == [11, 40, 50]
    assert table.counts.tolist() == [2, 3, 1]
    assert table.shared.keys.tolist() == [3, 7]
    twice = aggregate(iter([np.array([(1, 5), (1, 5)], PAIR)]))  # the same document twice is no group
    assert twice.counts.tolist() == [2] and len(twice.shared.keys) == 0


def _table(keys: np.ndarray, values: np.ndarray) -> pa.Table:
    return pa.table(
        {
            "doc_key": pa.array(keys, pa.uint64()),
            "minhash_bands": pa.FixedSizeListArray.from_arrays(
                pa.array(values.reshape(-1), pa.uint64()), values.shape[1]
            ),
        }
    )


def _graphs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A chain of 600 documents (diameter 599), a star of 400 around a random member, a 'comb', and noise."""
    n = 3000
    keys = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    values = rng.integers(0, 2**64 - 1, (n, 14), dtype=np.uint64, endpoint=True)
    for i in range(1, 600):  # chain: i shares band i % 14 with i − 1
        values[i, i % 14] = values[i - 1, i % 14]
    centre = 600 + 137
    for i in range(600, 1000):  # star: everyone shares band (i % 13) + 1 with the centre's
        if i != centre:
            values[i, 0] = values[centre, 0] if i % 2 else values[i, 0]
            values[i, 1 + i % 13] = values[centre, 1 + i % 13]
    for i in range(1000, 1400, 2):  # comb: pairs whose second member links to a spine
        values[i + 1, 3] = values[i, 3]
        values[i + 1, 5] = values[1000, 5]
    return keys, values


@pytest.mark.parametrize("partition_bytes", [1 << 12, 1 << 16, 128 << 20])
def test_components_equal_union_find_on_hard_graphs(tmp_path, partition_bytes):
    keys, values = _graphs(np.random.default_rng(2))
    expected = reference_clusters(keys, values)
    assert max(size for _, size in expected.values()) >= 600
    files = write_files(_table(keys, values), tmp_path / "in", files=4)
    result = dedup.cluster(files, str(tmp_path / "work"), 5, CONFIG, num_tasks=3, partition_bytes=partition_bytes)
    assert as_dict(assignments(result)) == expected
    stats = result.stats["methods"]["minhash"]
    assert stats["clustered"] == len(expected)
    assert stats["removed"] == stats["clustered"] - stats["clusters"]
    assert 2 <= stats["rounds"] < 40


def test_planted_chained_clusters(tmp_path):
    table, expected = planted_signatures(30_000, seed=4)
    files = write_files(table, tmp_path / "in", files=5)
    result = dedup.cluster(files, str(tmp_path / "work"), 7, CONFIG, num_tasks=4, partition_bytes=1 << 18)
    got = assignments(result)
    assert as_dict(got) == expected
    representatives = got.filter(got["is_representative"])
    assert representatives["doc_key"].to_pylist() == representatives["minhash_cluster_id"].to_pylist()
    histogram = dedup.cluster_size_histogram(result)
    assert sum(histogram["documents"].values()) == 30_000
    assert histogram["documents"][1] == 30_000 - len(expected)
    assert sum(histogram["clusters"][s] for s in histogram["clusters"] if s > 1) == len(representatives)


def test_no_candidates_and_no_signatures(tmp_path):
    rng = np.random.default_rng(5)
    keys = rng.integers(0, 2**64 - 1, 500, dtype=np.uint64, endpoint=True)
    values = rng.integers(0, 2**64 - 1, (500, 14), dtype=np.uint64, endpoint=True)
    table = _table(keys, values)
    files = write_files(table, tmp_path / "in", files=2)
    result = dedup.cluster(files, str(tmp_path / "work"), 3, CONFIG)
    assert assignments(result).num_rows == 0
    assert dedup.cluster_size_histogram(result)["documents"] == {1: 500}
    empty = pa.table(
        {
            "doc_key": pa.array(keys[:10], pa.uint64()),
            "minhash_bands": pa.nulls(10, pa.list_(pa.uint64(), 14)),
        }
    )
    files = write_files(empty, tmp_path / "in-empty", files=1)
    result = dedup.cluster(files, str(tmp_path / "work-empty"), 3, CONFIG)
    assert result.stats["signatures"] == 0 and assignments(result).num_rows == 0
