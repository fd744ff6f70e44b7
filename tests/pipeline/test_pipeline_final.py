"""The final stage's weights and seeded shuffle (pure functions on a table)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate.pipeline.execution.stages import WEIGHT, filter_outcomes, shuffled


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
