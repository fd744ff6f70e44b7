"""The final stage's weights and seeded shuffle (pure functions on a table), and its shards: target-sized,
every crawl in every shard, bytes that depend on the seed and the documents only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.blocks.keys import document_keys
from curate.pipeline.execution.stages import WEIGHT, BucketUnit, FinalWork, filter_outcomes, shuffled


def table(weights: list[int]) -> pa.Table:
    keys = np.arange(1, len(weights) + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return pa.table({"doc_key": pa.array(keys, pa.uint64()), "n": list(range(len(weights))),
                     WEIGHT: pa.array(weights, pa.int64())})


def test_shuffle_is_seeded_and_independent_of_input_order():
    rows = table([1] * 200)
    first = shuffled(rows, seed=7)["n"].to_pylist()
    assert sorted(first) == list(range(200)) and first != list(range(200))
    assert shuffled(rows.take(pa.array(np.arange(199, -1, -1))), seed=7)["n"].to_pylist() == first
    assert shuffled(rows, seed=8)["n"].to_pylist() != first


def test_materialize_repeats_rows_and_spreads_the_copies():
    weights = [1, 5, 2, 1, 8] + [1] * 45
    out = shuffled(table(weights), seed=0, materialize=True)
    assert out.num_rows == sum(weights)
    assert set(out[WEIGHT].to_pylist()) == {1}
    order = out["n"].to_pylist()
    assert {n: order.count(n) for n in set(order)} == {n: w for n, w in enumerate(weights)}
    positions = [i for i, n in enumerate(order) if n == 4]
    assert max(np.diff(positions)) > 1, "copies are interleaved with other documents, not adjacent"


def test_filter_outcomes_count_rule_removals_per_cluster_size():
    deduplicated = pa.table({"doc_key": pa.array([1, 2, 3, 4, 5], pa.uint64()),
                             "minhash_cluster_size": [1, 1, 2, 2, 5]})
    removed = [pa.chunked_array([pa.array([2, 5], pa.uint64())])]
    assert filter_outcomes(deduplicated, removed) == {"1": [1, 1], "2": [2, 0], "5": [0, 1]}


def _kept(rows: int) -> pa.Table:
    """Stage-3 kept rows of two crawls (a third of them from the first), as stage 3 writes them."""
    ids = [f"<urn:uuid:{i:06d}>" for i in range(rows)]
    dumps = ["CC-MAIN-2024-18" if i % 3 == 0 else "CC-MAIN-2024-22" for i in range(rows)]
    texts = [f"Asiakirja {i}: " + "sana " * (20 + i % 50) for i in range(rows)]
    return pa.table({"text": texts, "id": ids, "dump": dumps, "doc_key": document_keys(ids),
                     "minhash_cluster_size": pa.array([1 + i % 4 for i in range(rows)], pa.int64())})


def _final(tmp_path: Path, name: str, pieces: list[pa.Table], shard_bytes: int):
    inputs = []
    for i, piece in enumerate(pieces):
        path = tmp_path / name / "in" / f"part-{i}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(piece, path)
        inputs.append(str(path))
    unit = BucketUnit("fin_Latn-00003", "fin_Latn", 3, tuple(inputs))
    work = FinalWork(str(tmp_path / name / "out"), {1: 1, 2: 3}, seed=5, shard_bytes=shard_bytes)
    return work.run(unit)


def test_shards_mix_every_crawl_and_keep_to_their_target_size(tmp_path):
    kept = _kept(3_000)
    result = _final(tmp_path, "a", [kept], shard_bytes=20_000)
    assert len(result.files) >= 3
    assert result.counts == {"CC-MAIN-2024-18": 1_000, "CC-MAIN-2024-22": 2_000}
    assert sum(result.files.values()) == 3_000
    for path, rows in result.files.items():
        assert Path(path).name.startswith("00003-") and Path(path).parent.name == "data"
        shard = pq.read_table(path)
        assert shard.num_rows == rows > 300
        share = shard["dump"].to_pylist().count("CC-MAIN-2024-18") / rows
        assert 0.2 < share < 0.47  # both crawls, in about their proportion (1/3)
        assert Path(path).stat().st_size < 2 * 20_000


def test_shard_bytes_depend_on_the_seed_and_documents_only(tmp_path):
    kept = _kept(1_200)
    first = _final(tmp_path, "a", [kept], shard_bytes=500_000_000)
    order = np.random.default_rng(1).permutation(kept.num_rows)
    shuffled_in = kept.take(pa.array(order))
    second = _final(tmp_path, "b", [shuffled_in.slice(0, 500), shuffled_in.slice(500)], shard_bytes=500_000_000)
    [(a, rows)], [(b, _)] = first.files.items(), second.files.items()
    assert rows == 1_200 and Path(a).read_bytes() == Path(b).read_bytes()
