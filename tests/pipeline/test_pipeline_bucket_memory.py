"""Stage 3 and the final stage stream a bucket: in a plain child process, one bucket of ~300 MB of documents
(Arrow bytes) runs through both with a peak RSS growth far below that, and gives the same documents and order
as the whole-bucket computation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.blocks.keys import bucket_bounds, buckets_of
from curate.pipeline.execution.stages import _mix

ROOT = Path(__file__).resolve().parents[2]
FILES = 6
ROWS_PER_FILE = 16_000
TEXT_CHARS = 3_000
NUM_BUCKETS = 2
BUDGET = 16 << 20  # Stage3Work.batch_bytes and FinalWork.memory_bytes

# In the child: a stage-3 filter that drops a tenth of the documents, a warm-up bucket first (imports, the code
# pages of Arrow's Parquet reader and writer, allocator pools), then the measured bucket: each stage's peak RSS
# (VmHWM, reset before it) above the RSS it started from.
_CHILD = """
import json, sys
sys.path.insert(0, {parent!r})
import numpy as np
from curate.blocks.base import Block, mark_dropped
from curate.pipeline.execution.stages import BucketUnit, FinalWork, Stage3Work

class EveryTenth(Block):
    name = "every_tenth"
    reads = ("doc_key",)
    def apply(self, batch):
        return mark_dropped(batch, batch["doc_key"].to_numpy() % np.uint64(10) == 0, "every_tenth.dropped")

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

def reset():
    with open("/proc/self/clear_refs", "w") as handle:  # the peak (VmHWM) starts again from the current RSS
        handle.write("5")
    return status("VmRSS")

def both(out, inputs, bucket, growth=None):
    unit = BucketUnit(f"fin_Latn-{{bucket:05d}}", "fin_Latn", bucket, inputs, {buckets!r})
    before = reset()
    stage3 = Stage3Work(out, [EveryTenth()], batch_bytes={batch!r}).run(unit)
    if growth is not None:
        growth["stage3"] = status("VmHWM") - before
    before = reset()
    final = FinalWork(out, seed=3, shard_bytes={shard!r}, memory_bytes={memory!r}).run(
        BucketUnit(unit.id, "fin_Latn", bucket, (stage3.kept_file,), {buckets!r}))
    if growth is not None:
        growth["final"] = status("VmHWM") - before
    return stage3, final

both({warm_out!r}, tuple({warm!r}), 0)
growth = {{}}
stage3, final = both({out!r}, tuple({inputs!r}), 0, growth)
print(json.dumps({{"growth": growth, "stage3": stage3.counts, "read": stage3.documents_read, "files": final.files,
                   "kept_file": stage3.kept_file}}))
"""


def _text(rng: np.random.Generator, base: str, rows: int) -> list[str]:
    starts = rng.integers(0, len(base) - TEXT_CHARS, rows)
    return [base[s:s + TEXT_CHARS] for s in starts]


def _write_stage1(folder: Path, files: int, rows: int, seed: int) -> tuple[list[str], int, np.ndarray]:
    """Stage-1-like files (sorted by doc_key, 4 MB row groups): most keys in bucket 0 of 2, some in bucket 1.
    Returns the paths, the Arrow bytes of bucket 0's rows and their keys."""
    rng = np.random.default_rng(seed)
    words = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyzäö"), rng.integers(2, 12))) for _ in range(4_000)]
    base = " ".join(rng.choice(words, 400_000))
    _, middle = bucket_bounds(0, NUM_BUCKETS)
    folder.mkdir(parents=True)
    paths, size, keys_in = [], 0, []
    for number in range(files):
        keys = rng.integers(0, middle, rows, dtype=np.uint64)
        keys[: rows // 20] = rng.integers(middle, 2**64 - 1, rows // 20, dtype=np.uint64)  # bucket 1
        keys.sort()
        table = pa.table({"doc_key": pa.array(keys, pa.uint64()),
                          "id": [f"<urn:uuid:{number}-{i}>" for i in range(rows)],
                          "dump": ["CC-MAIN-2024-18" if k % 3 else "CC-MAIN-2024-22" for k in keys.tolist()],
                          "text": _text(rng, base, rows),
                          "stat_words": pa.array(rng.integers(50, 500, rows), pa.int64())})
        inside = buckets_of(keys, NUM_BUCKETS) == 0
        size += table.filter(pa.array(inside)).nbytes
        keys_in.append(keys[inside])
        path = folder / f"unit-{number}.parquet"
        pq.write_table(table, path, compression="zstd", row_group_size=max(64, (4 << 20) * rows // table.nbytes))
        paths.append(str(path))
    return paths, size, np.concatenate(keys_in)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    folder = tmp_path_factory.mktemp("buckets")
    warm, _, _ = _write_stage1(folder / "warm", 2, 500, seed=1)
    inputs, bucket_bytes, keys = _write_stage1(folder / "stage1", FILES, ROWS_PER_FILE, seed=2)
    script = _CHILD.format(parent=str(ROOT.parent), batch=BUDGET, memory=BUDGET, shard=40_000_000,
                           buckets=NUM_BUCKETS, warm_out=str(folder / "warm-out"), warm=warm,
                           out=str(folder / "out"), inputs=inputs)
    done = subprocess.run([sys.executable, "-P", "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {**report, "bucket_bytes": bucket_bytes, "keys": keys}


def test_peak_memory_is_far_below_the_buckets_documents(measured):
    size, growth = measured["bucket_bytes"], measured["growth"]
    print(f"bucket of {size / 2**20:.0f} MiB of documents: peak RSS growth stage 3 {growth['stage3'] / 2**20:.0f} MiB, "
          f"final {growth['final'] / 2**20:.0f} MiB")
    assert size > 250 << 20
    assert growth["stage3"] < size / 2 and growth["final"] < size / 2


def test_the_streamed_bucket_keeps_the_right_documents_in_the_seeded_order(measured):
    keys = measured["keys"]
    assert measured["read"] == len(keys)  # only bucket 0's rows, from every file
    dropped = int(np.count_nonzero(keys % np.uint64(10) == 0))
    assert measured["stage3"] == {"every_tenth.dropped": dropped, "kept": len(keys) - dropped}
    kept = keys[keys % np.uint64(10) != 0]
    expected = kept[np.argsort(_mix(kept, 3, np.zeros(len(kept), np.uint64)), kind="stable")]
    files = measured["files"]
    assert len(files) >= 3 and sum(files.values()) == len(kept)
    released = pa.concat_tables([pq.read_table(path, columns=["id"]) for path in sorted(files)])
    stage3 = pq.read_table(measured["kept_file"], columns=["id", "doc_key"])
    key_of = dict(zip(stage3["id"].to_pylist(), stage3["doc_key"].to_pylist()))
    assert [key_of[i] for i in released["id"].to_pylist()] == expected.tolist()
