"""Streaming a bucket changes nothing but memory: stage 3 in small batches gives the rows and counts of one
batch, the final stage's shards are the same bytes for any memory budget (and the order of `shuffled`), and
batches of several schemas land in one file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.blocks.base import Block, mark_dropped
from curate.blocks.keys import buckets_of, document_keys
from curate.pipeline.execution.stages import WEIGHT, BucketUnit, FinalWork, Stage3Work, shuffled
from curate.pipeline.execution.storage import Output
from curate.pipeline.execution.streams import BatchWriter
from curate.rebalancing import repetitions_for_cluster_sizes


class ShortText(Block):
    """Drops texts under 40 characters; adds a column only the rows it sees carry."""

    name = "short"
    reads = ("text",)

    def apply(self, batch: pa.Table) -> pa.Table:
        lengths = np.array([len(t) for t in batch["text"].to_pylist()])
        batch = batch.append_column("length", pa.array(lengths))
        return mark_dropped(batch, lengths < 40, "short.text")


def _stage1(folder: Path, files: int = 3, rows: int = 400) -> tuple[str, ...]:
    """Sorted stage-1-like files; the first file's first 50 ids appear again in the last (records read twice)."""
    paths = []
    for number in range(files):
        ids = [f"<urn:{number}:{i}>" for i in range(rows)]
        if number == files - 1:
            ids[:50] = [f"<urn:0:{i}>" for i in range(50)]
        table = pa.table({"id": ids, "doc_key": document_keys(ids), "text": ["w " * (i % 60) for i in range(rows)],
                          "minhash_cluster_size": pa.array([1 + i % 3 for i in range(rows)], pa.int64())})
        table = table.sort_by("doc_key")
        path = folder / f"unit-{number}.parquet"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, row_group_size=64)
        paths.append(str(path))
    return tuple(paths)


def test_stage3_in_small_batches_equals_one_batch(tmp_path):
    inputs = _stage1(tmp_path / "in")
    results = {}
    for name, batch_bytes in (("whole", 1 << 40), ("small", 2_000)):
        work = Stage3Work(str(tmp_path / name), [ShortText()], rehydration_rules=("short",), batch_bytes=batch_bytes)
        result = work.run(BucketUnit("fin_Latn-00001", "fin_Latn", 1, inputs, 3))
        kept = pq.read_table(result.kept_file).sort_by("doc_key")
        removed = pq.read_table(result.removed_file).sort_by([("doc_key", "ascending"), ("drop_reason", "ascending")])
        results[name] = (result, kept, removed)
    (whole, kept, removed), (small, kept_small, removed_small) = results["whole"], results["small"]
    assert whole.counts == small.counts and whole.counts["dedup.same_record"] > 0
    assert whole.filter_outcomes == small.filter_outcomes and whole.documents_read == small.documents_read
    assert kept.equals(kept_small) and removed.equals(removed_small)
    every = pa.concat_tables([pq.read_table(p) for p in inputs])
    in_bucket = every.filter(pa.array(buckets_of(every["doc_key"], 3) == 1))
    assert whole.documents_read == in_bucket.num_rows
    assert set(kept["id"].to_pylist()) | set(removed["id"].to_pylist()) == set(in_bucket["id"].to_pylist())
    # rows removed before the block (same record) and by it share one file: the block's column is null for the first
    assert removed.filter(pa.compute.equal(removed["drop_reason"], "dedup.same_record"))["length"].null_count > 0


def _kept(rows: int) -> pa.Table:
    ids = [f"<urn:uuid:{i:06d}>" for i in range(rows)]
    return pa.table({"text": [f"teksti {i} " * (1 + i % 9) for i in range(rows)], "id": ids,
                     "dump": ["CC-MAIN-2024-18" if i % 2 else "CC-MAIN-2024-22" for i in range(rows)],
                     "doc_key": document_keys(ids), "minhash_cluster_size": pa.array([1 + i % 4 for i in range(rows)])})


def test_final_shards_do_not_depend_on_the_memory_budget(tmp_path):
    kept = _kept(3_000)
    path = tmp_path / "kept.parquet"
    pq.write_table(kept, path, row_group_size=500)
    for materialize in (False, True):
        shards = {}
        for budget in (1 << 40, 20_000):
            out = tmp_path / f"{materialize}-{budget}"
            work = FinalWork(str(out), {1: 1, 2: 3, 3: 2}, seed=9, materialize=materialize, shard_bytes=30_000,
                             memory_bytes=budget)
            result = work.run(BucketUnit("fin_Latn-00000", "fin_Latn", 0, (str(path),)))
            shards[budget] = {Path(p).name: Path(p).read_bytes() for p in sorted(result.files)}
        assert len(shards[1 << 40]) >= 2 and shards[1 << 40] == shards[20_000]
        released = pa.concat_tables([pq.read_table(p) for p in sorted(result.files)])
        weights = pa.array(repetitions_for_cluster_sizes({1: 1, 2: 3, 3: 2}, kept["minhash_cluster_size"].to_numpy()),
                           pa.int64())
        expected = shuffled(kept.append_column(WEIGHT, weights), 9, materialize)
        assert released["id"].to_pylist() == expected["id"].to_pylist()
        assert released[WEIGHT].to_pylist() == expected[WEIGHT].to_pylist()


def test_batches_of_several_schemas_land_in_one_file(tmp_path):
    output = Output(str(tmp_path))
    writer = BatchWriter(output, output.path("x.parquet"), row_group_rows=3)
    writer.write(pa.table({"a": [1, 2], "b": [None, None]}))
    writer.write(pa.table({"a": [3], "b": ["x"], "c": [1.5]}))
    writer.write(pa.table({"a": [4, 5, 6, 7]}))
    assert writer.close() > 0
    table = pq.read_table(tmp_path / "x.parquet")
    assert table.to_pydict() == {"a": [1, 2, 3, 4, 5, 6, 7], "b": [None, None, "x", None, None, None, None],
                                 "c": [None, None, 1.5, None, None, None, None]}
    assert not list(tmp_path.glob("*.tmp-*"))


def test_a_key_range_reads_only_the_row_groups_it_overlaps(tmp_path):
    """doc_key statistics found by leaf path: a nested column before it shifts the leaf index."""
    from curate.pipeline.execution.streams import _overlapping_groups

    table = pa.table({"top_langs": pa.array([[1, 2], [3]] * 50),
                      "doc_key": pa.array(np.arange(100, dtype=np.uint64) * 1000)})
    pq.write_table(table, tmp_path / "n.parquet", row_group_size=10)
    assert _overlapping_groups(pq.ParquetFile(tmp_path / "n.parquet").metadata, 25_000, 45_000) == [2, 3, 4]
