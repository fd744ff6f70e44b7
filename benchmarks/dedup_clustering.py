"""Global near-dedup clustering: time and peak memory at 10^5 to 10^7 documents, ours vs datatrove.

Signatures are generated (the clustering never looks at text): 14 bands × 8 minimum values per document,
with a share of the documents planted in duplicate clusters of 2–10 (each member copies 1–3 whole bands
from the previous one, so clusters are chains the components step must walk), and optionally one
boilerplate cluster of `--planted-cluster` members with identical signatures. The same signatures go to

- ours: `dedup.cluster` (stage-1 Parquet files with `doc_key` + `minhash_bands`, the band hashes of those
  8 values) with builtin `map` — one process, i.e. every task in turn on one core;
- datatrove: MinHash stage 2 (`MinhashDedupBuckets`, the 14 bucket tasks in turn) and stage 3
  (`MinhashDedupCluster`, union–find in one process) on its stage-1 signature files (`bucket_NNN/*.sig`,
  sorted), with cluster sizes saved as FineWeb2 does.

Each side runs in a fresh interpreter pinned to one core; wall and CPU seconds and peak RSS (VmHWM, with the
resident size after its imports and, for ours, a 2,000-document warm-up run) are measured there. Both must
remove the same number of documents. The machine may be shared: CPU seconds are the comparable figure; wall
seconds also include waiting for the core and for disk (each task's manifest is fsynced).

    python benchmarks/dedup_clustering.py [--sizes 100000 1000000] [--budget-mib 128 16] [--no-datatrove]
    python benchmarks/dedup_clustering.py --sizes 10000000 --planted-cluster 1000000 --budget-mib 128
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

BANDS, ROWS = 14, 8
MERSENNE = (1 << 61) - 1  # datatrove stops reading a bucket at hashes ≥ 2^61 − 1


def _memory(field: str) -> int:
    """VmHWM (peak) or VmRSS (now) of this process, in bytes: unlike ru_maxrss, VmHWM starts afresh at exec
    instead of inheriting the parent's resident size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _pin() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})


def generate(documents: int, directory: Path, clustered_share: float, planted: int = 0, seed: int = 0) -> dict:
    """Write both sides' inputs for `documents` documents (the last `planted` of them one cluster of identical
    signatures); return what was planted."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate.blocks.minhash import _chain, fmix64

    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 2**64 - 1, documents, dtype=np.uint64, endpoint=True)
    # chains: member i copies band b of member i − 1 where shares[i, b]; chain starts share nothing
    limit = int(documents * clustered_share)
    sizes = rng.integers(2, 11, limit // 2 + 1)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    starts = starts[starts < limit]
    members = np.zeros(documents, bool)
    members[: min(int(starts[-1] + sizes[len(starts) - 1]), documents) if len(starts) else 0] = True
    members[starts] = False
    rows = np.flatnonzero(members)
    ranks = np.argsort(rng.random((len(rows), BANDS)), axis=1).argsort(axis=1)  # a random order of the bands
    shares = np.zeros((documents, BANDS), bool)
    shares[rows] = ranks < rng.integers(1, 4, len(rows))[:, None]  # 1–3 random bands
    shares[documents - planted + 1:] = True  # the boilerplate cluster: each member copies every band
    band_hashes = np.empty((documents, BANDS), np.uint64)
    index = np.arange(documents)
    for band in range(BANDS):
        values = rng.integers(0, MERSENNE, (documents, ROWS), dtype=np.uint64)
        source = np.maximum.accumulate(np.where(shares[:, band], 0, index))  # the chain member it copies
        values = values[source]
        h = np.full(documents, fmix64(np.array([band + 0x5BD1E995], np.uint64))[0], np.uint64)
        for row in range(ROWS):
            h = _chain(h, values[:, row])
        band_hashes[:, band] = h
        # datatrove stage 1 output: records (8 × uint64 hash, uint32 doc index), sorted
        record = np.dtype([(f"h{r}", "<u8") for r in range(ROWS)] + [("doc", "<u4")])
        records = np.empty(documents, record)
        for row in range(ROWS):
            records[f"h{row}"] = values[:, row]
        records["doc"] = index
        order = np.argsort(values[:, 0], kind="stable")  # distinct tuples differ in their first value, but check
        first = values[order, 0]
        tied = np.flatnonzero(first[1:] == first[:-1])
        if len(tied) and (values[order[tied]] != values[order[tied + 1]]).any():
            order = np.lexsort([values[:, r] for r in reversed(range(ROWS))])
        records = records[order]
        bucket = directory / "datatrove" / "sigs" / f"bucket_{band:03d}"
        bucket.mkdir(parents=True, exist_ok=True)
        (bucket / "00000.minhash.sig").write_bytes(records.tobytes())
    ours = directory / "ours" / "stage1"
    ours.mkdir(parents=True, exist_ok=True)
    files = []
    bounds = np.linspace(0, documents, 9).astype(int)
    for part, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        table = pa.table(
            {
                "doc_key": pa.array(keys[lo:hi]),
                "minhash_bands": pa.FixedSizeListArray.from_arrays(pa.array(band_hashes[lo:hi].reshape(-1)), BANDS),
            }
        )
        path = ours / f"part-{part}.parquet"
        pq.write_table(table, path, row_group_size=65_536)
        files.append(str(path))
    return {"files": files, "signature_bytes": documents * (8 + BANDS * 8)}


def child_ours(files: list[str], work: str, budget: int) -> dict:
    _pin()
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate import dedup
    from curate.language_configs.minhash import DedupConfig

    # warm-up on 2,000 of the documents: lazily loaded kernels, allocator arenas and thread pools are then
    # in the baseline, and what the run adds on top is what grows with the input
    warm = Path(tempfile.mkdtemp(prefix="warm-up-"))
    first = next(pq.ParquetFile(files[0]).iter_batches(batch_size=2000))
    pq.write_table(pa.Table.from_batches([first]), warm / "part.parquet")
    dedup.cluster([str(warm / "part.parquet")], str(warm / "work"), 4, DedupConfig(exact=False), partition_bytes=budget)
    shutil.rmtree(warm)
    baseline = _memory("VmRSS")
    wall, cpu = time.perf_counter(), time.process_time()
    result = dedup.cluster(files, work, 64, DedupConfig(exact=False), partition_bytes=budget)
    stats = result.stats["methods"]["minhash"]
    return {
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "peak": _memory("VmHWM"),
        "baseline": baseline,
        "removed": stats["removed"],
        "clusters": stats["clusters"],
        "rounds": stats["rounds"],
        "steps": {k: v for k, v in result.stats["timings"].items() if k not in ("tasks", "tasks_skipped")},
        "tasks": result.stats["timings"]["tasks"],
    }


def child_datatrove(directory: str) -> dict:
    _pin()
    import logging

    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster
    from loguru import logger

    logger.remove()
    logging.disable(logging.INFO)
    config = MinhashConfig()  # 14 buckets × 8 hashes, 64-bit
    root = Path(directory)
    baseline = _memory("VmRSS")
    wall, cpu = time.perf_counter(), time.process_time()
    buckets = MinhashDedupBuckets(str(root / "sigs"), str(root / "buckets"), config=config)
    for rank in range(config.num_buckets):
        buckets.run(None, rank, config.num_buckets)
    stage2 = time.perf_counter() - wall
    cluster = MinhashDedupCluster(str(root / "buckets"), str(root / "remove"), config=config, save_cluster_size=True)
    cluster.run(None, 0, 1)
    removed = sum(p.stat().st_size // 4 for p in (root / "remove").glob("*.remove"))
    return {
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "peak": _memory("VmHWM"),
        "baseline": baseline,
        "removed": removed,
        "steps": {"stage 2 (buckets)": stage2, "stage 3 (clusters)": time.perf_counter() - wall - stage2},
    }


def _spawn(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--clustered-share", type=float, default=0.2)
    parser.add_argument("--planted-cluster", type=int, default=0, help="members of one identical-signature cluster")
    parser.add_argument("--budget-mib", type=int, nargs="+", default=[128, 16], help="ours: partition_bytes")
    parser.add_argument("--no-datatrove", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "ours":
            print(json.dumps(child_ours(json.loads(rest[0]), rest[1], int(rest[2]))))
        else:
            print(json.dumps(child_datatrove(rest[0])))
        return

    mib = 1 << 20
    rows = []
    for size in args.sizes:
        directory = Path(tempfile.mkdtemp(prefix=f"dedup-bench-{size}-"))
        try:
            started = time.perf_counter()
            planted = generate(size, directory, args.clustered_share, args.planted_cluster)
            print(f"{size:,} documents: signatures generated in {time.perf_counter() - started:.1f} s "
                  f"({planted['signature_bytes'] / mib:.0f} MiB of doc_key + band hashes)", flush=True)
            for budget in args.budget_mib:
                work = directory / "ours" / f"work-{budget}"
                ours = _spawn("--child", "ours", json.dumps(planted["files"]), str(work), str(budget * mib))
                rows.append((size, f"ours, {budget} MiB budget", ours))
                print(f"  ours ({budget} MiB budget): {ours['wall']:.1f} s ({ours['cpu']:.1f} CPU s), peak RSS {ours['peak'] / mib:.0f} MiB "
                      f"(baseline {ours['baseline'] / mib:.0f}), {ours['tasks']} tasks, {ours['rounds']} rounds, "
                      f"steps {json.dumps({k: round(v, 1) for k, v in ours['steps'].items()})}", flush=True)
            if not args.no_datatrove:
                theirs = _spawn("--child", "datatrove", str(directory / "datatrove"))
                rows.append((size, "datatrove stages 2–3", theirs))
                print(f"  datatrove: {theirs['wall']:.1f} s ({theirs['cpu']:.1f} CPU s), peak RSS {theirs['peak'] / mib:.0f} MiB "
                      f"(baseline {theirs['baseline'] / mib:.0f}), "
                      f"steps {json.dumps({k: round(v, 1) for k, v in theirs['steps'].items()})}", flush=True)
                removed = {r[2]["removed"] for r in rows if r[0] == size}
                assert len(removed) == 1, f"the sides disagree on the documents removed: {removed}"
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    print(
        f"\n{'documents':>10}  {'side':<26}{'CPU s':>7}{'wall s':>8}{'docs/s per core':>17}{'peak RSS MiB':>14}"
        f"{'above baseline':>16}{'removed':>10}"
    )
    for size, side, r in rows:
        print(
            f"{size:>10,}  {side:<26}{r['cpu']:>7.1f}{r['wall']:>8.1f}{size / r['cpu']:>17,.0f}"
            f"{r['peak'] / mib:>14.0f}{(r['peak'] - r['baseline']) / mib:>16.0f}{r['removed']:>10,}"
        )
    sides = sorted({side for _, side, _ in rows}, key=[s for _, s, _ in rows].index)
    if len(args.sizes) > 1:
        small, large = min(args.sizes), max(args.sizes)
        print(f"\ngrowth from {small:,} to {large:,} documents ({large / small:.0f}× the input):")
        for side in sides:
            a = next(r for s, n, r in rows if s == small and n == side)
            b = next(r for s, n, r in rows if s == large and n == side)
            print(
                f"  {side:<26} CPU × {b['cpu'] / a['cpu']:.1f}, wall × {b['wall'] / a['wall']:.1f}, memory above "
                f"baseline × {max(b['peak'] - b['baseline'], 1) / max(a['peak'] - a['baseline'], 1):.1f}"
            )
    if not args.no_datatrove:
        print("\nours ÷ datatrove (same signatures, one core): CPU seconds, wall seconds")
        for size in args.sizes:
            theirs = next(r for s, n, r in rows if s == size and n.startswith("datatrove"))
            for side in sides:
                if side.startswith("ours"):
                    ours = next(r for s, n, r in rows if s == size and n == side)
                    print(
                        f"  {size:>10,}  {side:<26} {theirs['cpu'] / ours['cpu']:.1f}× less CPU, "
                        f"{theirs['wall'] / ours['wall']:.1f}× less wall time"
                    )


if __name__ == "__main__":
    main()
