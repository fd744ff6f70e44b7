"""Applying the assignments to stage-3 batches: the join, the columns, the audit trail of exact, MinHash and
URL dedup on real Finnish text, and the cluster-size histogram for stats.json."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import pyarrow.parquet as pq
from dedup_helpers import assignments, consecutive_documents, share_for, signature_table, variant, write_files

from curate import dedup
from curate.blocks.base import DROP_REASON, split_dropped
from curate.blocks.keys import buckets_of, document_keys
from curate.language_configs.minhash import DedupConfig


def _assignments(rows: list[tuple[int, int, int]], method: str = "minhash") -> pa.Table:
    keys, clusters, sizes = (list(c) for c in zip(*rows)) if rows else ([], [], [])
    return pa.table(
        {
            "doc_key": pa.array(keys, pa.uint64()),
            f"{method}_cluster_id": pa.array(clusters, pa.uint64()),
            f"{method}_cluster_size": pa.array(sizes, pa.int64()),
            "is_representative": pa.array([k == c for k, c in zip(keys, clusters)], pa.bool_()),
        },
        schema=dedup.assignment_schema(method),
    )


def test_apply_assignments_joins_on_doc_key_and_keeps_row_order():
    batch = pa.table({"doc_key": pa.array([50, 10, 40, 30, 20, 60], pa.uint64()), "text": list("abcdef")})
    batch = batch.append_column(DROP_REASON, pa.array([None, None, None, "filter.earlier", None, None], pa.string()))
    assignments = _assignments([(40, 10, 3), (10, 10, 3), (30, 10, 3), (60, 20, 2), (20, 20, 2)])
    out = dedup.apply_assignments(batch, assignments, "minhash")
    assert out["text"].to_pylist() == list("abcdef")
    assert out["minhash_cluster_id"].to_pylist() == [50, 10, 10, 10, 20, 20]
    assert out["minhash_cluster_size"].to_pylist() == [1, 3, 3, 3, 2, 2]
    assert out[DROP_REASON].to_pylist() == [None, None, "dedup.minhash", "filter.earlier", None, "dedup.minhash"]
    assert out.schema.field("minhash_cluster_id").type == pa.uint64()
    assert out.schema.field("minhash_cluster_size").type == pa.int64()


def test_apply_without_doc_key_and_with_empty_assignments():
    ids = ["<urn:uuid:1>", "<urn:uuid:2>", "<urn:uuid:3>"]
    keys = document_keys(ids).to_pylist()
    batch = pa.table({"id": ids})
    out = dedup.apply_assignments(batch, _assignments([(keys[2], keys[0], 2), (keys[0], keys[0], 2)], "exact"), "exact")
    assert out["exact_cluster_size"].to_pylist() == [2, 1, 2]
    assert out[DROP_REASON].to_pylist() == [None, None, "dedup.exact"]
    out = dedup.apply_assignments(batch, _assignments([]), "minhash")
    assert out["minhash_cluster_size"].to_pylist() == [1, 1, 1]
    assert out["minhash_cluster_id"].to_pylist() == keys
    assert out[DROP_REASON].null_count == 3
    assert dedup.apply_assignments(batch.slice(0, 0), _assignments([]), "minhash").num_rows == 0


def _id_ordered(prefix: str, count: int) -> list[str]:
    """`count` ids whose doc_keys increase in the order given (to place representatives on purpose)."""
    ids, last, n = [], -1, 0
    while len(ids) < count:
        candidate = f"{prefix}-{n}"
        n += 1
        key = document_keys([candidate])[0].as_py()
        if key > last and key < (len(ids) + 1) * (2**64 // (count + 1)):
            ids.append(candidate)
            last = key
    return ids


@pytest.fixture(scope="module")
def audited(sentences, vocabulary, tmp_path_factory):
    """Finnish documents with planted exact copies, near-duplicates and shared URLs, through the whole stage."""
    rng = np.random.default_rng(21)
    bases = consecutive_documents(sentences)[:80]
    documents, ids, urls = [], [], []

    def add(words, doc_id, url):
        documents.append(words)
        ids.append(doc_id)
        urls.append(url)

    for i, base in enumerate(bases[:60]):  # plain documents, one URL each
        add(base, f"plain-{i}", f"https://a.fi/{i}")
    # exact copies of bases[60]: same normalised text (case, punctuation and digits differ)
    copy = bases[60]
    add(copy, "exact-0", "https://b.fi/0")
    add([w.upper() for w in copy] + ["!"], "exact-1", "https://b.fi/1")
    add([("0" if w.isdigit() else w) for w in copy] + [",", "."], "exact-2", "https://b.fi/2")
    # a near-duplicate cluster of three (J ≈ 0.95)
    near = bases[61]
    add(near, "near-0", "https://c.fi/0")
    add(variant(near, share_for(0.95), vocabulary, rng), "near-1", "https://c.fi/1")
    add(variant(near, share_for(0.95), vocabulary, rng), "near-2", "https://c.fi/2")
    # two versions of one page (different text, same URL)
    add(bases[62], "page-v1", "https://d.fi/page")
    add(bases[63], "page-v2", "https://d.fi/page")
    # URL dedup decides among survivors: R < X < Y by doc_key; X (a near-duplicate of R, removed by MinHash)
    # shares its URL with Y; Y must stay, although X has the smaller key
    r, x, y = _id_ordered("order", 3)
    add(bases[64], r, "https://e.fi/r")
    add(variant(bases[64], share_for(0.97), vocabulary, rng), x, "https://e.fi/shared")
    add(bases[65], y, "https://e.fi/shared")
    config = DedupConfig(by_url=True)
    table = signature_table(documents, ids, config, urls=urls)
    files = write_files(table, tmp_path_factory.mktemp("stage1"), files=2)
    result = dedup.cluster(files, str(tmp_path_factory.mktemp("work")), 3, config)
    buckets = buckets_of(table["doc_key"], 3)
    parts = []
    for bucket in range(3):  # as stage 3 does it: one bucket's rows with that bucket's assignments
        rows = table.filter(pa.array(buckets == bucket))
        parts.append(dedup.apply_dedup(rows, result.load(bucket)))
    applied = pa.concat_tables(parts)
    reasons = dict(zip(applied["id"].to_pylist(), applied[DROP_REASON].to_pylist()))
    return {"applied": applied, "reasons": reasons, "result": result, "ids": (r, x, y), "table": table}


def _row(audited, doc_id):
    applied = audited["applied"]
    return applied.filter(pc.equal(applied["id"], doc_id)).to_pylist()[0]


def test_exact_copies_keep_one(audited):
    reasons = [audited["reasons"][f"exact-{i}"] for i in range(3)]
    assert reasons.count(None) == 1 and reasons.count("dedup.exact") == 2
    rows = [_row(audited, f"exact-{i}") for i in range(3)]
    assert {r["exact_cluster_size"] for r in rows} == {3}
    assert {r["minhash_cluster_size"] for r in rows} == {3}  # identical texts are near-duplicates too
    kept = [r for r in rows if r[DROP_REASON] is None][0]
    assert kept["doc_key"] == min(r["doc_key"] for r in rows) == kept["exact_cluster_id"]


def test_near_duplicates_keep_one(audited):
    rows = [_row(audited, f"near-{i}") for i in range(3)]
    assert {r["minhash_cluster_size"] for r in rows} == {3}
    assert sorted(str(r[DROP_REASON]) for r in rows) == ["None", "dedup.minhash", "dedup.minhash"]
    assert {r["exact_cluster_size"] for r in rows} == {1}


def test_url_dedup_keeps_one_version_decided_among_survivors(audited):
    versions = [audited["reasons"]["page-v1"], audited["reasons"]["page-v2"]]
    assert sorted(map(str, versions)) == ["None", "dedup.url"]
    r, x, y = audited["ids"]
    assert audited["reasons"][r] is None
    assert audited["reasons"][x] == "dedup.minhash"
    assert audited["reasons"][y] is None  # independent URL dedup would have dropped Y for X
    assert _row(audited, y)["url_cluster_size"] == 1


def test_audit_trail_and_statistics(audited):
    applied, result = audited["applied"], audited["result"]
    assert applied.num_rows == audited["table"].num_rows
    kept, removed = split_dropped(applied)
    counts = Counter(removed[DROP_REASON].to_pylist())
    assert counts == {"dedup.exact": 2, "dedup.minhash": 3, "dedup.url": 1}
    assert kept.num_rows == applied.num_rows - 6
    assert set(result.methods) == {"exact", "minhash", "url"}
    histogram = dedup.cluster_size_histogram(result)
    assert histogram["clusters"] == {1: applied.num_rows - 8, 2: 1, 3: 2}
    assert sum(histogram["documents"].values()) == applied.num_rows
    assert result.stats["methods"]["minhash"]["removed"] == 5  # within MinHash alone: 2 + 2 + 1


def test_a_listed_copy_takes_no_part_and_never_stands_for_its_unlisted_copies(tmp_path):
    """Three exact copies of one text: the one on a listed host (a takedown list, `Block.before_dedup`) is left out
    of clustering, so whichever representative dedup would have picked, an unlisted copy is kept, with the cluster
    size of the unlisted copies; stage 3 removes the listed one as `optout.list`."""
    from curate.blocks.optout import ListOptOut, OptOutList
    from curate.pipeline.execution.stages import BucketUnit, Stage3Work

    config = DedupConfig(exact=True)
    text = ("Tämä on sama teksti kolmella eri sivustolla, ja sen kopiot ovat sanasta sanaan samat. " * 30).split()
    ids = [f"<urn:uuid:copy-{i}>" for i in range(3)]
    urls = ["https://listed.example/a", "https://kept.example/b", "https://also-kept.example/c"]
    table = signature_table([text] * 3, ids, config, urls=urls).append_column("text", pa.array([" ".join(text)] * 3))
    table = table.sort_by("doc_key")
    listed = ListOptOut.from_lists([OptOutList("takedowns.txt", ("listed.example",))])
    stage1 = write_files(table, tmp_path / "stage1", 1)
    result = dedup.cluster(stage1, str(tmp_path / "dedup"), 1, config, exclude=[listed])
    assert result.stats["documents"] == 2 and result.stats["excluded"] == 1
    unlisted = {k for k, u in zip(table["doc_key"].to_pylist(), table["url"].to_pylist()) if "listed." not in u}
    assert set(assignments(result, "exact")["doc_key"].to_pylist()) == unlisted
    assert result.fingerprint != dedup.cluster(stage1, str(tmp_path / "plain"), 1, config).fingerprint

    work = Stage3Work(str(tmp_path / "out"), [listed], result)
    outcome = work.run(BucketUnit("fin_Latn-00000", "fin_Latn", 0, tuple(stage1)))
    assert (outcome.counts["optout.list"], outcome.counts["dedup.exact"], outcome.counts["kept"]) == (1, 1, 1)
    kept = pq.read_table(outcome.kept_file)
    assert kept["url"].to_pylist()[0] in urls[1:] and kept["exact_cluster_size"].to_pylist() == [2]
