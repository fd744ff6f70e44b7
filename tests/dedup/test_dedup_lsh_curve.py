"""Planted near-duplicates from real Finnish text, through signatures and the distributed clustering.

Pairs (base, variant) with a measured Jaccard J of their 5-gram sets end up in one cluster with probability
1 − (1 − J^8)^14 (≈ 92 % at 0.8, ≈ 5 % at 0.5); groups whose members all have J ≥ 0.9 with their base come
out as exactly one cluster of the planted size."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from dedup_helpers import consecutive_documents, jaccard, share_for, signature_table, variant, write_files

from curate import dedup
from curate.language_configs.minhash import DedupConfig

CONFIG = DedupConfig(exact=False)


def merge_probability(config: DedupConfig, jaccard: float) -> float:
    """Probability that two documents with this Jaccard similarity share at least one band (LSH's S-curve)."""
    return 1.0 - (1.0 - jaccard**config.rows_per_band) ** config.bands
RUNS = 4  # each run plants one pair (or group) per base document, so pairs never share a base within a run
GROUPS = 60  # in the first run


def _run(documents, ids, tmp_path_factory):
    table = signature_table(documents, ids, CONFIG)
    files = write_files(table, tmp_path_factory.mktemp("stage1"), files=3)
    result = dedup.cluster(files, str(tmp_path_factory.mktemp("work")), 4, CONFIG, num_tasks=2)
    listed = {}
    for bucket in range(result.num_buckets):
        for row in result.load(bucket)["minhash"].to_pylist():
            listed[row["doc_key"]] = row
    return dict(zip(table["id"].to_pylist(), table["doc_key"].to_pylist())), listed, result


@pytest.fixture(scope="module")
def planted(sentences, vocabulary, tmp_path_factory):
    """Non-overlapping ~200-word documents of consecutive Finnish sentences; in each run, each is the base of
    one pair (target Jaccard uniform in 0.3–1) or, in the first run, of one group (all members J ≥ 0.9)."""
    bases = consecutive_documents(sentences)
    rng = np.random.default_rng(11)
    pair_jaccard, groups, keys, listed, results = {}, {}, {}, {}, []
    for run in range(RUNS):
        documents, ids = [], []
        for i, base in enumerate(bases):
            if run == 0 and i < GROUPS:
                members = [base]
                while len(members) < 2 + i % 7:
                    candidate = variant(base, share_for(0.95), vocabulary, rng)
                    if jaccard(base, candidate) >= 0.9:
                        members.append(candidate)
                groups[i] = len(members)
                documents += members
                ids += [f"group-{i}-{j}" for j in range(len(members))]
                continue
            other = variant(base, share_for(rng.uniform(0.3, 0.995)), vocabulary, rng)
            pair = f"{run}.{i}"
            pair_jaccard[pair] = jaccard(base, other)
            documents += [base, other]
            ids += [f"pair-{pair}-a", f"pair-{pair}-b"]
        run_keys, run_listed, result = _run(documents, ids, tmp_path_factory)
        keys.update(run_keys)
        listed.update({(run, k): row for k, row in run_listed.items()})
        results.append(result)
    return {"pairs": pair_jaccard, "groups": groups, "keys": keys, "listed": listed, "results": results}


def _run_of(doc_id: str) -> int:
    return int(doc_id.split("-")[1].split(".")[0]) if doc_id.startswith("pair-") else 0


def _cluster_of(planted, doc_id):
    key = planted["keys"][doc_id]
    row = planted["listed"].get((_run_of(doc_id), key))
    return (row["minhash_cluster_id"], row["minhash_cluster_size"]) if row else (key, 1)


def test_merge_rate_follows_the_lsh_curve(planted):
    bins = defaultdict(lambda: [0, 0.0, 0.0, 0])  # merged, expected, variance, pairs
    for k, j in planted["pairs"].items():
        merged = _cluster_of(planted, f"pair-{k}-a")[0] == _cluster_of(planted, f"pair-{k}-b")[0]
        p = merge_probability(CONFIG, j)
        entry = bins[min(int(j * 10), 9)]
        entry[0] += merged
        entry[1] += p
        entry[2] += p * (1 - p)
        entry[3] += 1
    lines, failures = [], []
    for b in sorted(bins):
        merged, expected, variance, count = bins[b]
        sigma = np.sqrt(variance)
        lines.append(
            f"J {b / 10:.1f}-{(b + 1) / 10:.1f}: {count} pairs, merged {merged / count:.3f}, "
            f"curve {expected / count:.3f} ± {sigma / count:.3f}"
        )
        if abs(merged - expected) > 4 * sigma + 1:
            failures.append(lines[-1])
    report = "\n".join(lines)
    assert not failures, f"merge rate off the LSH curve:\n{report}"
    assert len(bins) >= 7, report
    print(report)


def test_merge_rate_near_the_quoted_points(planted):
    """≈ 92 % at J = 0.8 and ≈ 5 % at J = 0.5 (pairs within ±0.03)."""
    for point, curve in ((0.8, 0.924), (0.5, 0.053)):
        near = [k for k, j in planted["pairs"].items() if abs(j - point) <= 0.03]
        merged = sum(_cluster_of(planted, f"pair-{k}-a")[0] == _cluster_of(planted, f"pair-{k}-b")[0] for k in near)
        probabilities = [merge_probability(CONFIG, planted["pairs"][k]) for k in near]
        sigma = np.sqrt(sum(p * (1 - p) for p in probabilities))
        assert len(near) >= 40
        assert abs(merged - sum(probabilities)) <= 4 * sigma + 1, (point, merged / len(near), curve)
        assert abs(np.mean(probabilities) - curve) < 0.08


def test_planted_groups_have_exact_cluster_sizes(planted):
    for g, size in planted["groups"].items():
        keys = [planted["keys"][f"group-{g}-{j}"] for j in range(size)]
        rows = [planted["listed"][(0, k)] for k in keys]
        assert {r["minhash_cluster_id"] for r in rows} == {min(keys)}
        assert {r["minhash_cluster_size"] for r in rows} == {size}
        assert [r["doc_key"] for r in rows if r["is_representative"]] == [min(keys)]


def test_no_cluster_mixes_unrelated_documents(planted):
    owner = {(_run_of(doc_id), key): doc_id.rsplit("-", 1)[0] for doc_id, key in planted["keys"].items()}
    members = defaultdict(set)
    for (run, key), row in planted["listed"].items():
        members[(run, row["minhash_cluster_id"])].add(owner[(run, key)])
    assert members and all(len(origins) == 1 for origins in members.values())
    assert sum(r.stats["documents"] for r in planted["results"]) == len(planted["keys"])
