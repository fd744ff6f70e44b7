"""The clustering runs in bounded memory: under an address-space limit (RLIMIT_AS) of less than the bytes of
its input signatures above the process's own baseline, it completes with the exact planted clusters; and a
single cluster of 200,000 members (a boilerplate page) fits in a limit far below its own edges."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
from dedup_helpers import as_dict, assignments, planted_signatures, write_files

from curate.dedup import ClusterResult

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = 250_000
PARTITION_BYTES = 4 << 20

# In the child: import everything and run a small warm-up clustering first (allocator arenas, Arrow's thread
# pool and numpy's buffers reserve address space once), then measure VmSize and cap the address space.
_CHILD = """
import json, resource, sys
sys.path.insert(0, {root!r})
from curate import dedup
from language_configs.minhash import DedupConfig

def vm_size():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024

files, work, headroom = {files!r}, {work!r}, {headroom!r}
config = DedupConfig(exact=False)
dedup.cluster(files[:1], work + "-warm-up", 2, config, partition_bytes={budget!r})
baseline = vm_size()
resource.setrlimit(resource.RLIMIT_AS, (baseline + headroom, baseline + headroom))
result = dedup.cluster(files, work, 4, config, partition_bytes={budget!r}, num_tasks=2)
print(json.dumps({{"baseline": baseline, "result": result.to_json()}}))
"""


def _run_limited(
    files: list[str], work: Path, headroom: int, budget: int = PARTITION_BYTES
) -> subprocess.CompletedProcess:
    script = _CHILD.format(root=str(ROOT), files=files, work=str(work), headroom=headroom, budget=budget)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)


def test_clustering_under_an_address_space_limit_smaller_than_the_signatures(tmp_path):
    table, expected = planted_signatures(DOCUMENTS, seed=12)
    signature_bytes = table.nbytes  # doc_key + 14 band hashes: 120 bytes a document
    files = write_files(table, tmp_path / "in", files=4, row_group_size=4096)
    del table
    headroom = signature_bytes // 2
    done = _run_limited(files, tmp_path / "work", headroom)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    result = ClusterResult.from_json(report["result"])
    assert as_dict(assignments(result)) == expected
    assert result.stats["methods"]["minhash"]["clustered"] == len(expected) > 40_000
    assert headroom < signature_bytes


def test_the_limit_is_enforced(tmp_path):
    """The same run with 1 MB of headroom fails: the limit above is real, not a no-op."""
    table, _ = planted_signatures(DOCUMENTS // 5, seed=12)
    files = write_files(table, tmp_path / "in", files=2, row_group_size=4096)
    done = _run_limited(files, tmp_path / "work", 1 << 20)
    assert done.returncode != 0 and "MemoryError" in done.stderr


CLUSTER = 200_000
SHARED_BANDS = 7


def _with_boilerplate_cluster(background: int, seed: int) -> tuple[pa.Table, dict[int, tuple[int, int]]]:
    """Planted background clusters plus one cluster of CLUSTER members that share the same first
    SHARED_BANDS band hashes (the rest random), shuffled into the background."""
    table, expected = planted_signatures(background, seed=seed)
    rng = np.random.default_rng(seed + 1)
    keys = rng.integers(0, 2**64 - 1, CLUSTER, dtype=np.uint64, endpoint=True)
    values = rng.integers(0, 2**64 - 1, (CLUSTER, 14), dtype=np.uint64, endpoint=True)
    values[:, :SHARED_BANDS] = values[0, :SHARED_BANDS]
    cluster = pa.table(
        {
            "doc_key": pa.array(keys, pa.uint64()),
            "minhash_bands": pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), pa.uint64()), 14),
        }
    )
    table = pa.concat_tables([table, cluster])
    table = table.take(pa.array(rng.permutation(table.num_rows)))
    smallest = int(keys.min())
    expected.update({int(k): (smallest, CLUSTER) for k in keys.tolist()})
    return table, expected


def test_one_cluster_of_200000_members_within_a_limit_below_its_edges(tmp_path):
    """The centre of the cluster has 200,000 neighbours, each LSH bucket of the shared bands 200,000 members
    (3.2 MB a band, 22 MB over the bands, twice that as edges in both directions): the run completes under a
    headroom of 12 MiB with a 1 MiB budget, with the same clusters and sizes as union–find."""
    table, expected = _with_boilerplate_cluster(60_000, seed=21)
    files = write_files(table, tmp_path / "in", files=4, row_group_size=4096)
    del table
    headroom = 12 << 20
    done = _run_limited(files, tmp_path / "work", headroom, budget=1 << 20)
    assert done.returncode == 0, done.stderr[-3000:]
    result = ClusterResult.from_json(json.loads(done.stdout.strip().splitlines()[-1])["result"])
    assert as_dict(assignments(result)) == expected
    histogram = result.stats["methods"]["minhash"]["histogram"]
    assert histogram[str(CLUSTER)] == 1
    assert CLUSTER * 16 * SHARED_BANDS * 2 > 3 * headroom  # the cluster's edges alone exceed the limit
