"""What a stage-3 bucket reads: bytes per bucket over its own bytes, and footers opened, before and after regrouping.

Generates `--files` stage-1 files with the real writer (`stage1.write_languages`: two languages a unit, the real
columns: text, ids, LID, statistics, MinHash bands, text hash), `--rows` rows of the first language each, then
reads every one of `--buckets` buckets of that language two ways, through a filesystem that counts what is read:

- before: the reading of the old layout, kept here as the reference: every bucket opens every stage-1 file
  (its footer twice: once for the unified schema, once to read) and reads the row groups overlapping its range
  (measured on `--before-buckets` buckets, evenly spaced: it costs files × buckets opens);
- after: the language's parts regrouped by bucket once (`regroup.RegroupWork`, its reads counted apart), then
  each bucket reads its row groups of the regroup files (`streams.bucket_batches`, as stage 3 does).

A bucket's own bytes are its share of the stage-1 Parquet bytes (each part's bytes times the share of its rows in
the bucket), the same figure for both. "Bytes read" counts the reads of row-group data; "footers" counts the reads
of a file's tail (each footer open), "footer bytes" what they read. Prints a table; `--json` prints the figures.

    .venv/bin/python benchmarks/stage3_io.py --files 1000 --buckets 200 --before-buckets 10
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

common.setup()

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from fsspec.implementations.local import LocalFileSystem  # noqa: E402

from curate.blocks.keys import DOC_KEY, bucket_bounds, buckets_of  # noqa: E402
from curate.files import FileRoot  # noqa: E402
from curate.pipeline.execution.parts import Part  # noqa: E402
from curate.pipeline.execution.regroup import RegroupWork, bucket_inputs, plan_groups  # noqa: E402
from curate.pipeline.execution.stage1 import _rows_per_group, write_languages  # noqa: E402
from curate.pipeline.execution.stages import BucketUnit  # noqa: E402
from curate.pipeline.execution.storage import Output  # noqa: E402
from curate.pipeline.execution.streams import bucket_batches, conform, unified_schema  # noqa: E402

LANGUAGE, OTHER = "fin_Latn", "swe_Latn"
TAIL = 8  # a read that reaches a file's last 8 bytes (footer length and magic) is a footer open
BATCH_BYTES = 64 << 20


class _Counted:
    """A file object that adds what is read from it to its filesystem's counters."""

    def __init__(self, inner, fs: CountingFileSystem, path: str):
        self.inner, self.fs, self.path = inner, fs, path
        self.size = inner.seek(0, 2)
        inner.seek(max(self.size - TAIL, 0))
        tail = inner.read(TAIL)  # the footer's length (not counted: the instrument's own read)
        footer = int.from_bytes(tail[:4], "little") if len(tail) == TAIL and tail[4:] == b"PAR1" else 0
        self.footer_start = self.size - TAIL - footer
        inner.seek(0)

    def read(self, size: int = -1) -> bytes:
        start = self.inner.tell()
        data = self.inner.read(size)
        end = start + len(data)
        if end > self.size - TAIL:
            self.fs.footers[self.path] += 1
        footer = max(0, end - max(start, self.footer_start))
        self.fs.footer_bytes += footer
        self.fs.bytes_read += len(data) - footer
        return data

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.inner.close()


class CountingFileSystem(LocalFileSystem):
    """The local filesystem, counting the row-group bytes read, the footer bytes read and the footer opens of each
    file."""

    cachable = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reset()

    def reset(self) -> None:
        self.bytes_read = 0  # row-group (data) bytes
        self.footer_bytes = 0
        self.footers: Counter = Counter()

    def _open(self, path, mode="rb", *args, **kwargs):
        handle = super()._open(path, mode, *args, **kwargs)
        return _Counted(handle, self, str(path)) if "r" in mode else handle


def counting(fs: CountingFileSystem) -> None:
    """Every `Output` (and dedup `Store`) of this process reads and writes through `fs`."""
    FileRoot.fs = property(lambda self: fs)


def generate(folder: Path, files: int, rows: int, seed: int = 0) -> list[Part]:
    """`files` stage-1 files (two languages each), written by the real writer; the parts of `LANGUAGE`."""
    rng = np.random.default_rng(seed)
    words = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyzäö"), rng.integers(2, 10))) for _ in range(2_000)]
    output = Output(str(folder))
    parts = []
    for number in range(files):
        tables = {code: _rows(rng, words, number, code, rows if code == LANGUAGE else rows // 4)
                  for code in (LANGUAGE, OTHER)}
        path = output.path("_work", "stage1", f"unit-{number:06d}-0000000000.parquet")
        parts.append(Part.of(write_languages(output, path, tables, _rows_per_group)[LANGUAGE]))
    return parts


def _rows(rng: np.random.Generator, words: list[str], unit: int, code: str, rows: int) -> pa.Table:
    ids = [f"<urn:uuid:{unit}-{code}-{i}>" for i in range(rows)]
    keys = np.sort(rng.integers(0, 2**64 - 1, rows, dtype=np.uint64))
    text = [" ".join(rng.choice(words, rng.integers(40, 160))) for _ in range(rows)]
    bands = pa.FixedSizeListArray.from_arrays(pa.array(rng.integers(0, 2**63, rows * 14, dtype=np.uint64)), 14)
    return pa.table({
        "text": text, "id": ids, "dump": ["CC-MAIN-2024-22"] * rows,
        "url": [f"https://example.{code[:3]}/{unit}/{i}" for i in range(rows)],
        "file_path": [f"crawl-data/CC-MAIN-2024-22/segments/{unit}.warc.gz"] * rows,
        "date": ["2024-05-20T00:00:00Z"] * rows, "language": [code[:3]] * rows,
        "language_script": [code[4:]] * rows, "language_score": rng.random(rows),
        "lid_label": [code] * rows, DOC_KEY: pa.array(keys, pa.uint64()),
        "stat_words": pa.array(rng.integers(40, 160, rows), pa.int64()),
        "stat_line_punct_ratio": rng.random(rows), "stat_dup_para_frac": rng.random(rows),
        "stat_top_2_gram_frac": rng.random(rows), "stat_stop_words": pa.array(rng.integers(0, 40, rows), pa.int64()),
        "minhash_bands": bands, "text_hash": pa.array(rng.integers(0, 2**63, rows, dtype=np.uint64)),
    })


def own_bytes(parts: list[Part], num_buckets: int) -> np.ndarray:
    """Each bucket's share of the parts' Parquet bytes (a part's bytes times the share of its rows in it)."""
    own = np.zeros(num_buckets)
    for part in parts:
        with open(part.path, "rb") as handle:
            metadata = pq.read_metadata(handle)
            keys = pq.ParquetFile(handle, metadata=metadata).read_row_groups(
                list(part.groups(metadata)), columns=[DOC_KEY])[DOC_KEY].to_numpy()
        own += np.bincount(buckets_of(keys, num_buckets), minlength=num_buckets) * part.bytes / len(keys)
    return own


def old_bucket_batches(output: Output, parts: list[Part], bucket: int, num_buckets: int):
    """The reading before regrouping (the old `streams.bucket_batches`, on each language's part of a file): the
    unified schema from every file's footer, then each file opened again and the row groups whose `doc_key`
    statistics overlap the bucket read."""
    schemas = []
    for part in parts:
        with output.fs.open(part.path, "rb") as handle:
            schemas.append(pq.ParquetFile(handle).schema_arrow)
    schema = unified_schema(schemas)
    lo, hi = bucket_bounds(bucket, num_buckets)
    for part in parts:
        with output.fs.open(part.path, "rb") as handle:
            parquet = pq.ParquetFile(handle)
            index = parquet.schema_arrow.names.index(DOC_KEY)
            for group in part.groups(parquet.metadata):
                statistics = parquet.metadata.row_group(group).column(index).statistics
                if int(statistics.max) >= lo and int(statistics.min) < hi:
                    rows = parquet.read_row_group(group, columns=list(part.columns))
                    inside = buckets_of(rows[DOC_KEY].to_numpy(), num_buckets) == bucket
                    yield conform(rows.filter(pa.array(inside)), schema)


def _per_bucket(fs: CountingFileSystem, buckets: list[int], own: np.ndarray, read) -> dict:
    """Bytes read over own bytes, footer opens and the most opens of one file, of each bucket in `buckets`."""
    ratios, footers, most, total, footer_bytes = [], [], [], 0, 0
    for bucket in buckets:
        fs.reset()
        rows = sum(t.num_rows for t in read(bucket))
        assert rows, f"bucket {bucket} read no rows"
        ratios.append(fs.bytes_read / own[bucket])
        footers.append(sum(fs.footers.values()))
        most.append(max(fs.footers.values(), default=0))
        total += fs.bytes_read
        footer_bytes += fs.footer_bytes
    return {"footer_bytes_mean": footer_bytes // len(buckets),"buckets_measured": len(buckets), "ratio_max": round(max(ratios), 3),
            "ratio_mean": round(float(np.mean(ratios)), 3), "footers_per_bucket_max": max(footers),
            "most_opens_of_a_footer_in_a_bucket": max(most), "bytes_read": total}


def measure(folder: Path, files: int, buckets: int, rows: int, before_buckets: int | None = None) -> dict:
    """Both readings of a generated case (`before_buckets`: the old reading of that many buckets, evenly spaced;
    None: all of them)."""
    fs = CountingFileSystem()
    counting(fs)
    started = time.monotonic()
    parts = generate(folder, files, rows)
    generated = time.monotonic() - started
    output = Output(str(folder))
    own = own_bytes(parts, buckets)

    started = time.monotonic()
    sample = sorted({int(b) for b in np.linspace(0, buckets - 1, min(before_buckets or buckets, buckets))})
    before = _per_bucket(fs, sample, own, lambda b: old_bucket_batches(output, parts, b, buckets))
    before["seconds"] = round(time.monotonic() - started, 2)

    fs.reset()
    started = time.monotonic()
    groups = plan_groups(parts)
    work = RegroupWork(str(folder), buckets)
    regrouped = {t: {"result": {"buckets": work.run(BucketUnit(f"{LANGUAGE}-{t:05d}", LANGUAGE, t, group,
                                                                len(groups))).buckets}}
                 for t, group in enumerate(groups)}
    regroup = {"seconds": round(time.monotonic() - started, 2), "tasks": len(groups), "bytes_read": fs.bytes_read,
               "footers": sum(fs.footers.values()), "most_opens_of_a_footer": max(fs.footers.values())}
    started = time.monotonic()
    after = _per_bucket(fs, list(range(buckets)), own,
                        lambda b: bucket_batches(output, bucket_inputs(regrouped, b), b, buckets, BATCH_BYTES))
    after["seconds"] = round(time.monotonic() - started, 2)
    return {"files": files, "buckets": buckets, "rows_per_file": rows, "stage1_bytes": sum(p.bytes for p in parts),
            "own_bytes_mean": int(own.mean()), "generate_seconds": round(generated, 2),
            "before": before, "regroup": regroup, "after": after}


def _table(result: dict) -> str:
    before, after, regroup = result["before"], result["after"], result["regroup"]
    lines = [f"{result['files']:,} stage-1 files ({result['stage1_bytes'] / 1e6:,.1f} MB of {LANGUAGE}), "
             f"{result['buckets']} buckets (own bytes {result['own_bytes_mean'] / 1e3:,.1f} kB a bucket on average)",
             "| | buckets measured | read / own bytes, worst bucket | mean | footers opened per bucket | "
             "most opens of one footer in a bucket | footer bytes per bucket | bytes read, buckets measured | seconds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, figures in (("before (every file, overlapping row groups)", before),
                          ("after (regrouped by bucket)", after)):
        lines.append(f"| {name} | {figures['buckets_measured']} | {figures['ratio_max']:.2f}× | "
                     f"{figures['ratio_mean']:.2f}× | "
                     f"{figures['footers_per_bucket_max']:,} | {figures['most_opens_of_a_footer_in_a_bucket']} | "
                     f"{figures['footer_bytes_mean'] / 1e3:,.1f} kB | "
                     f"{figures['bytes_read'] / 1e6:,.1f} MB | {figures['seconds']:.1f} |")
    lines.append(f"regroup, once: {regroup['tasks']} tasks read {regroup['bytes_read'] / 1e6:,.1f} MB and "
                 f"{regroup['footers']:,} footers (each at most {regroup['most_opens_of_a_footer']}×) in "
                 f"{regroup['seconds']:.1f} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--buckets", type=int, default=200)
    parser.add_argument("--rows", type=int, default=200, help=f"rows of {LANGUAGE} per stage-1 file")
    parser.add_argument("--before-buckets", type=int, default=10,
                        help="buckets the old reading is measured on, evenly spaced (it opens every file for each)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="curate-stage3-io-") as folder:
        result = measure(Path(folder), args.files, args.buckets, args.rows, args.before_buckets)
    print(json.dumps(result, indent=1) if args.json else _table(result))


if __name__ == "__main__":
    main()
