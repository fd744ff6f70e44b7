"""The clustering runs in bounded memory: under an address-space limit (RLIMIT_AS) of less than the bytes of
its input signatures above the process's own baseline, it completes with the exact planted clusters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def _run_limited(files: list[str], work: Path, headroom: int) -> subprocess.CompletedProcess:
    script = _CHILD.format(root=str(ROOT), files=files, work=str(work), headroom=headroom, budget=PARTITION_BYTES)
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
