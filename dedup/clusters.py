"""Cluster assignments: the output files of the dedup stage, and how stage 3 applies them to a batch.

For each method (`minhash`, `exact`, `url`) the stage writes one Parquet file per output bucket
(`<method>/bucket-00007.parquet`, bucket = `blocks.keys.buckets_of(doc_key, num_buckets)`, the stage-1
bucketing), sorted by `doc_key`, listing only documents in clusters of two or more:

| column | type | meaning |
|---|---|---|
| `doc_key` | uint64 | the document |
| `<method>_cluster_id` | uint64 | the smallest doc_key of its cluster |
| `<method>_cluster_size` | int64 | documents in the cluster, the kept one included |
| `is_representative` | bool | the one document of the cluster that is kept (the smallest doc_key) |

`apply_assignments` (one method) and `apply_dedup` (every method) join a batch with them on `doc_key` (not listed:
a singleton, size 1, cluster id its own doc_key) and mark the non-representatives with `mark_dropped`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from curate.blocks.base import mark_dropped, set_column
from curate.blocks.keys import DOC_KEY, document_keys
from curate.dedup.plan import Plan, range_name
from curate.dedup.shuffle import ASSIGNMENT, read_partitions
from curate.dedup.storage import Store, committed

METHODS = ("exact", "minhash", "url")  # the order stage 3 applies them in (the first reason set is kept)
DROP_REASONS = {"minhash": "dedup.minhash", "exact": "dedup.exact", "url": "dedup.url"}
REPRESENTATIVE = "is_representative"


def cluster_id_column(method: str) -> str:
    return f"{method}_cluster_id"


def cluster_size_column(method: str) -> str:
    return f"{method}_cluster_size"


def assignment_schema(method: str) -> pa.Schema:
    return pa.schema(
        [
            (DOC_KEY, pa.uint64()),
            (cluster_id_column(method), pa.uint64()),
            (cluster_size_column(method), pa.int64()),
            (REPRESENTATIVE, pa.bool_()),
        ]
    )


def bucket_file(directory: str, bucket: int) -> str:
    return f"{directory}/bucket-{bucket:05d}.parquet"


@dataclass(frozen=True)
class GatherTask:
    plan: Plan
    method: str
    step: str
    runs: tuple[str, ...]
    lo: int
    hi: int
    output: str


def gather(task: GatherTask) -> dict:
    """Write the assignment files of buckets [lo, hi) (skipped when its manifest exists)."""
    name = range_name(task.lo, task.hi)
    return committed(task.plan.store, task.plan.manifest(task.step, name), lambda: _gather(task))


def _gather(task: GatherTask) -> dict:
    store = task.plan.store
    rows = 0
    for bucket in range(task.lo, task.hi):
        records = read_partitions(store, list(task.runs), bucket, bucket + 1, ASSIGNMENT)
        order = np.lexsort((records["cluster_id"], records["doc_key"]))
        records = records[order]
        if len(records):  # a key listed twice (the same document twice in the input): keep one row
            records = records[np.r_[True, records["doc_key"][1:] != records["doc_key"][:-1]]]
        table = pa.table(
            [
                pa.array(records["doc_key"], pa.uint64()),
                pa.array(records["cluster_id"], pa.uint64()),
                pa.array(records["size"].astype(np.int64), pa.int64()),
                pa.array(records["doc_key"] == records["cluster_id"], pa.bool_()),
            ],
            schema=assignment_schema(task.method),
        )
        store.write_parquet(bucket_file(task.output, bucket), table)
        rows += len(records)
    return {"rows": rows}


@dataclass(frozen=True)
class ClusterResult:
    """What a dedup run produced: where the assignment files are, and its statistics.

    fingerprint: covers the set of input files (their identities), the dedup config and `num_buckets`;
        stage-3 units chain it into their own fingerprints, so a run over more files redoes them.
    root: the run's directory (`<work_dir>/<fingerprint[:16]>`).
    methods: the methods that ran, in application order.
    stats: counts (`documents`, `signatures`, per method: `clusters`, `clustered`, `removed`), the
        cluster-size histograms, the component rounds and the seconds per step.
    """

    fingerprint: str
    root: str
    num_buckets: int
    methods: tuple[str, ...]
    stats: dict = field(default_factory=dict, compare=False)

    def directory(self, method: str) -> str:
        return Store(self.root).path(method)

    def bucket_file(self, method: str, bucket: int) -> str:
        """The assignment file of `method` for one output bucket (a path or URL anyone can open)."""
        return Store(self.root).url(method, f"bucket-{bucket:05d}.parquet")

    def load(self, bucket: int) -> dict[str, pa.Table]:
        """{method: assignment table} of one output bucket, for `apply_dedup`."""
        if not 0 <= bucket < self.num_buckets:
            raise ValueError(f"bucket {bucket} is outside 0..{self.num_buckets - 1}")
        store = Store(self.root)
        return {method: store.read_parquet(bucket_file(self.directory(method), bucket)) for method in self.methods}

    def to_json(self) -> dict:
        return {
            "fingerprint": self.fingerprint,
            "root": self.root,
            "num_buckets": self.num_buckets,
            "methods": list(self.methods),
            "stats": self.stats,
        }

    @classmethod
    def from_json(cls, value: dict) -> ClusterResult:
        return cls(value["fingerprint"], value["root"], value["num_buckets"], tuple(value["methods"]), value["stats"])


def _batch_keys(batch: pa.Table) -> np.ndarray:
    if DOC_KEY in batch.column_names:
        return batch[DOC_KEY].to_numpy().astype(np.uint64, copy=False)
    return document_keys(batch["id"]).to_numpy()


def apply_assignments(batch: pa.Table, assignments: pa.Table, method: str) -> pa.Table:
    """Add `<method>_cluster_id` / `<method>_cluster_size` to `batch` (same rows, same order) and mark the
    documents that are not their cluster's representative with drop_reason `dedup.<method>`.

    A pure left join on `doc_key` (from the `doc_key` column, else computed from `id`); `assignments` holds
    the method's rows for (at least) the batch's bucket; documents it does not list are singletons.
    """
    keys = _batch_keys(batch)
    listed = assignments[DOC_KEY].to_numpy().astype(np.uint64, copy=False)
    clusters = assignments[cluster_id_column(method)].to_numpy()
    sizes = assignments[cluster_size_column(method)].to_numpy()
    representative = assignments[REPRESENTATIVE].to_numpy(zero_copy_only=False)
    if len(listed) > 1 and not np.all(listed[1:] > listed[:-1]):
        order = np.argsort(listed, kind="stable")
        listed, clusters, sizes, representative = listed[order], clusters[order], sizes[order], representative[order]
    position = np.searchsorted(listed, keys)
    position = np.minimum(position, max(len(listed) - 1, 0))
    found = (listed[position] == keys) if len(listed) else np.zeros(len(keys), bool)
    cluster_id = np.where(found, clusters[position] if len(listed) else keys, keys)
    size = np.where(found, sizes[position] if len(listed) else 1, 1).astype(np.int64)
    removed = found & ~(representative[position] if len(listed) else np.zeros(len(keys), bool))
    batch = set_column(batch, cluster_id_column(method), pa.array(cluster_id, pa.uint64()))
    batch = set_column(batch, cluster_size_column(method), pa.array(size, pa.int64()))
    return mark_dropped(batch, removed, DROP_REASONS[method])


def apply_dedup(batch: pa.Table, assignments: dict[str, pa.Table]) -> pa.Table:
    """Every method of `ClusterResult.load(bucket)`, in order (exact, minhash, url)."""
    for method in METHODS:
        if method in assignments:
            batch = apply_assignments(batch, assignments[method], method)
    return batch


def cluster_size_histogram(result: ClusterResult, method: str = "minhash") -> dict[str, dict[int, int]]:
    """For stats.json: {"documents": {size: documents in clusters of that size}, "clusters": {size: clusters}}.

    Singletons are size 1 (every input document that is in no cluster, those without a signature included).
    """
    stats = result.stats["methods"][method]
    clusters = {int(k): int(v) for k, v in stats["histogram"].items()}
    documents = {size: size * count for size, count in clusters.items()}
    singletons = result.stats["documents"] - sum(documents.values())
    clusters[1] = documents[1] = singletons
    order = sorted(clusters)
    return {"documents": {s: documents[s] for s in order}, "clusters": {s: clusters[s] for s in order}}
