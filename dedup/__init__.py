"""Global dedup of one language (stage 2): MinHash-LSH near-dedup with cluster ids and sizes, exact dedup and
optional URL dedup, as file-based tasks any `map` can run (builtin, a process pool, Ray).

    result = dedup.cluster(stage1_files, work_dir, num_buckets, config.dedup, map_fn=ray_map)
    for bucket in range(num_buckets):                      # stage 3, one task per bucket
        assignments = result.load(bucket)
        batch = dedup.apply_dedup(batch, assignments)      # per batch of that bucket

No Ray here: `pipeline/` passes the `map_fn`. See `dedup/stage.py` for the steps and resume.
"""

from curate.dedup.clusters import (
    DROP_REASONS,
    METHODS,
    ClusterResult,
    apply_assignments,
    apply_dedup,
    assignment_schema,
    cluster_size_histogram,
)
from curate.dedup.stage import cluster, fingerprint, input_identity

__all__ = [
    "DROP_REASONS",
    "METHODS",
    "ClusterResult",
    "apply_assignments",
    "apply_dedup",
    "assignment_schema",
    "cluster",
    "cluster_size_histogram",
    "fingerprint",
    "input_identity",
]
