"""Index-guided selection: only the WARC records Common Crawl's columnar URL index labels with a run's languages.

The index (`cc-index/table/cc-main/warc/crawl=<crawl>/subset=warc/*.parquet`) has a row per capture with
`warc_filename`, `warc_record_offset`, `warc_record_length`, `fetch_status`, `content_mime_detected` and
`content_languages`: up to three ISO 639-3 codes detected by CLD2, the language covering most text first
("fin,eng"). A run with `select="index"` reads, per crawl, the rows that are HTML with status 200 whose
`content_languages` holds one of the run's languages (anywhere, or first only with `primary_only`); each of its
WARCs is then read as the byte ranges of those records (`pipeline.sources.ranged`). The pipeline's own LID still
decides what is kept: the index only saves reading, decompressing and extracting everything else.

The query streams record batches (pyarrow dataset over the source's fsspec filesystem: column projection, the
status/mime/file predicate evaluated in the scan) and groups the selected rows with polars; one crawl's selected
rows are held at a time (~20 bytes a row), and the plan keeps 16 bytes a record.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from curate.errors import UserError
from curate.language_configs import ConfigError, resolve_language
from curate.language_configs.cld2 import NEIGHBORS, cld2_languages, index_code
from curate.pipeline.sources.remote import SourceUnavailable, is_transient
from curate.pipeline.sources.crawls import Source, WarcFile
from curate.pipeline.execution.provenance import fingerprint
from curate.pipeline.execution.storage import Output

log = logging.getLogger("curate")

INDEX_PREFIX = "cc-index/table/cc-main/warc"
SELECT_MODES = ("full", "index", "index+neighbors")
AUTO = "auto"  # index+neighbors where the index can label every language of the run, else full (`auto_select`)
AUTO_MODE = "index+neighbors"
FIRST_LABELLED_CRAWL = "CC-MAIN-2018-39"  # the first crawl whose index has `content_languages`
HTML_MIMES = ("text/html", "application/xhtml+xml")
COLUMNS = ("warc_filename", "warc_record_offset", "warc_record_length", "content_languages")
INDEX_READERS = 4  # index files scanned at once (I/O bound: pyarrow releases the GIL)
COMPACT_EVERY = 32  # batches between re-aggregations of the per-file counts (bounds their memory)
SCAN_ROWS = 1 << 17  # index rows handed to polars at a time, whatever the index files' row groups

def auto_select(languages: Iterable[str], source: Source, crawls: list[str]) -> tuple[str, str]:
    """`--select auto`: (`index+neighbors`, why) when Common Crawl's index can label every language of the run and
    every crawl has the index with languages, else (`full`, the reason it cannot be used)."""
    try:
        codes = [resolve_language(language) for language in languages]
    except ConfigError as error:
        raise UserError(str(error)) from None
    unlabelled = [code for code in codes if code not in cld2_languages()]
    if unlabelled:
        shown = ", ".join(unlabelled[:5]) + (f" and {len(unlabelled) - 5:,} more" if len(unlabelled) > 5 else "")
        them = "it" if len(unlabelled) == 1 else "them"
        return "full", f"auto: CLD2 cannot label {shown}, so Common Crawl's index cannot select {them}"
    early = [crawl for crawl in crawls if crawl < FIRST_LABELLED_CRAWL]
    if early:
        return "full", (f"auto: the index of {', '.join(early)} has no languages (they start with "
                        f"{FIRST_LABELLED_CRAWL})")
    missing = [crawl for crawl in crawls if not index_files(source, crawl)]
    if missing:
        return "full", f"auto: no columnar index for {', '.join(missing)} at {source.location}"
    return AUTO_MODE, (f"auto: Common Crawl's index labels {', '.join(codes)} (CLD2); --select full reads "
                       f"every record")


@dataclass(frozen=True)
class Selection:
    """Which index rows a run reads: HTML, status 200, and one of `codes` in `content_languages` (the first
    code only if `primary_only`)."""

    codes: tuple[str, ...]
    primary_only: bool = False

    @classmethod
    def for_run(cls, languages: Iterable[str], mode: str, primary_only: bool = False) -> Selection:
        """The selection of `--select mode` for `--lang` codes (`fin`, `fin_Latn`, `est`, …)."""
        if mode not in SELECT_MODES or mode == "full":
            raise UserError(f"unknown selection {mode!r} (--select): use one of {', '.join((AUTO, *SELECT_MODES))}")
        try:
            codes = [index_code(resolve_language(language)) for language in languages]
        except ConfigError as error:
            raise UserError(str(error)) from None
        if mode == "index+neighbors":
            codes += [n for c in codes for n in NEIGHBORS.get(c, ())]
        return cls(tuple(dict.fromkeys(codes)), primary_only)

    @property
    def pattern(self) -> str:
        """A regex over `content_languages` ("fin", "eng,fin", …) matching the selected codes."""
        alternatives = "|".join(self.codes)
        return f"^({alternatives})(,|$)" if self.primary_only else f"(^|,)({alternatives})(,|$)"

    def matches(self, languages: pl.Expr) -> pl.Expr:
        return languages.str.contains(self.pattern).fill_null(False)


@dataclass(frozen=True)
class CrawlIndex:
    """The index files of one crawl (as the source's filesystem names them)."""

    crawl: str
    files: tuple[str, ...]


def index_files(source: Source, crawl: str) -> list[str]:
    """The `subset=warc` index files of `crawl`: from `crawl-data/<crawl>/cc-index-table.paths.gz` over HTTP
    (which cannot be listed), else by listing the index prefix; [] if the crawl has no index."""
    if source.is_http:
        try:
            listing = gzip.decompress(source.read_small(f"crawl-data/{crawl}/cc-index-table.paths.gz"))
        except FileNotFoundError:
            return []
        lines = [line.strip() for line in listing.decode().splitlines()]
        return [source.url(line) for line in lines if line.endswith(".parquet") and "/subset=warc/" in line]
    pattern = source.url(f"{INDEX_PREFIX}/crawl={crawl}/subset=warc/*.parquet")
    return sorted(source.fs.glob(pattern))


def crawl_indexes(source: Source, crawls: list[str]) -> dict[str, CrawlIndex]:
    """Every crawl's index; one UserError naming the crawls that have none."""
    found = {crawl: CrawlIndex(crawl, tuple(index_files(source, crawl))) for crawl in crawls}
    missing = [crawl for crawl, index in found.items() if not index.files]
    if missing:
        raise UserError(f"no columnar index (cc-index/table/cc-main/warc/) for {', '.join(missing)} at "
                        f"{source.location}; use --select full for {'it' if len(missing) == 1 else 'them'}")
    return found


MapFn = Callable[[Callable, list], list]


def select_files(source: Source, index: CrawlIndex, files: list[WarcFile], selection: Selection,
                 readers: int = INDEX_READERS, map_fn: MapFn | None = None, cache: Output | None = None,
                 fill_cache: bool = True) -> list[WarcFile]:
    """`files` (one crawl's WARCs, in listing order) with the ranges of their selected records; files with no
    selected record are left out.

    The index files are scanned with `map_fn` (one call per file: Ray tasks in a run; threads by default, and for
    up to `readers` files, where a task's start would cost more than the scan). With
    `cache`, the scan's result is kept as `_work/index/<crawl>/<digest>.parquet` under that output, keyed by the
    index files' names and sizes, the selection and the WARCs asked for, and reused when it is there; `fill_cache`
    False only reads it (`--dry-run` writes nothing)."""
    wanted = [f.path for f in files]
    cached = cache.path("_work", "index", index.crawl, f"{_scan_digest(source, index, selection, wanted)}.parquet") \
        if cache is not None else None
    if cached is not None and cache.fs.exists(cached):
        considered, selected = _split_scan(pl.from_arrow(cache.read_parquet([cached])))
    else:
        if map_fn is None or len(index.files) <= readers:  # a few files: the driver's threads, no task's start-up
            with ThreadPoolExecutor(max(1, min(readers, len(index.files)))) as pool:
                parts = list(pool.map(partial(_scan_with_retry, source, selection=selection, wanted=wanted),
                                      index.files))
        else:
            parts = map_fn(partial(_scan_with_retry, source, selection=selection, wanted=wanted), list(index.files))
        considered = _sum_counts([p[0] for p in parts])
        selected = pl.concat([p[1] for p in parts], how="vertical_relaxed") if parts else _empty_selected()
        if cached is not None and fill_cache:
            cache.write_parquet(cached, _joined_scan(considered, selected).to_arrow())
    counts = dict(zip(considered["warc_filename"].cast(pl.String).to_list(), considered["considered"].to_list()))
    groups = selected.with_columns(pl.col("warc_filename").cast(pl.String)).partition_by(
        "warc_filename", as_dict=True, include_key=False)
    chosen = []
    for warc in files:
        rows = groups.get((warc.path,))
        if rows is None or not rows.height:
            continue
        spans = np.column_stack([rows["warc_record_offset"].to_numpy(), rows["warc_record_length"].to_numpy()])
        chosen.append(WarcFile.with_ranges(warc.crawl, warc.path, spans, counts.get(warc.path, rows.height)))
    log.info("%s: %d of %d index records selected in %d of %d WARCs", index.crawl,
             sum(f.records for f in chosen), sum(counts.get(f.path, 0) for f in files), len(chosen), len(files))
    return chosen


def _scan_digest(source: Source, index: CrawlIndex, selection: Selection, wanted: list[str]) -> str:
    """What a cached scan is valid for: the index files (names and sizes), the selection and the WARCs asked for."""
    files = [(path.rsplit("/", 1)[-1], source.fs.size(path)) for path in index.files]
    return fingerprint(files, selection.pattern, sorted(wanted))


def _joined_scan(considered: pl.DataFrame, selected: pl.DataFrame) -> pl.DataFrame:
    """Both parts of a scan in one table: count rows have no offset, selected rows no count."""
    counts = considered.select(pl.col("warc_filename").cast(pl.String), pl.lit(None, pl.Int64).alias(
        "warc_record_offset"), pl.lit(None, pl.Int64).alias("warc_record_length"), pl.col("considered").cast(pl.Int64))
    rows = selected.select(pl.col("warc_filename").cast(pl.String), "warc_record_offset", "warc_record_length",
                           pl.lit(None, pl.Int64).alias("considered"))
    return pl.concat([counts, rows])


def _split_scan(table: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    counts = table.filter(pl.col("considered").is_not_null())
    rows = table.filter(pl.col("considered").is_null())
    return (counts.select("warc_filename", pl.col("considered").cast(pl.UInt32)),
            rows.select("warc_filename", "warc_record_offset", "warc_record_length"))


def group_by_records(files: list[WarcFile], records_per_unit: int) -> list[tuple[WarcFile, ...]]:
    """Consecutive files grouped so that each group holds about `records_per_unit` selected records."""
    groups: list[tuple[WarcFile, ...]] = []
    current: list[WarcFile] = []
    records = 0
    for warc in files:
        current.append(warc)
        records += warc.records
        if records >= records_per_unit:
            groups.append(tuple(current))
            current, records = [], 0
    if current:
        groups.append(tuple(current))
    return groups


@dataclass(frozen=True)
class Recall:
    """Of the documents a full run released, how many an index-guided run on the same input released too."""

    full: int
    index: int
    both: int

    @property
    def recall(self) -> float:
        return self.both / self.full if self.full else 1.0

    def __str__(self) -> str:
        return (f"recall {self.recall:.4f}: {self.both:,} of the full run's {self.full:,} documents are in the "
                f"index run's {self.index:,}")


def recall(full_output: str, index_output: str, language: str) -> Recall:
    """Compare the released documents (by `id`) of two runs of `language` on the same crawls and files, one with
    `select="full"` and one with an index selection."""
    try:
        code = resolve_language(language)
    except ConfigError as error:
        raise UserError(str(error)) from None
    full, index = released_ids(full_output, code), released_ids(index_output, code)
    return Recall(len(full), len(index), len(full & index))


def released_ids(output: str, code: str) -> set[str]:
    """The ids of the documents in `<output>/<code>/data/`, as the committed final manifests list them."""
    out = Output(output)
    manifests = out.fs.glob(out.path("_work", "manifests", "final", f"{code}-*.json"))
    if not manifests:
        raise UserError(f"{output} has no finished run of {code} (no final manifests); run it first")
    paths = sorted({p for m in manifests for p in (out.read_json(m) or {}).get("result", {}).get("files", {})})
    table = out.read_parquet(paths, columns=["id"])
    return set(table["id"].to_pylist()) if table.num_rows else set()


def _scan_with_retry(source: Source, path: str, selection: Selection,
                     wanted: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`_scan` of one index file, started again (with the source's backoff) after a transient failure."""
    delays = source.policy.delays()
    while True:
        try:
            return _scan(source, path, selection, wanted)
        except Exception as error:  # noqa: BLE001 - classified just below
            if not is_transient(error):
                raise
            delay = next(delays, None)
            if delay is None:
                raise SourceUnavailable(f"{path}: giving up after {source.policy.attempts} attempts ({error})") \
                    from error
            log.warning("%s: %s; reading the index file again in %.1fs", path, type(error).__name__, delay)
            time.sleep(delay)


def _scan(source: Source, path: str, selection: Selection, wanted: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One index file → (per WARC: `considered` HTML 200 records, the selected rows: file, offset, length)."""
    file_format = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=["warc_filename"]))
    dataset = ds.dataset(path, filesystem=source.fs, format=file_format)
    missing = [c for c in (*COLUMNS, "fetch_status", "content_mime_detected") if c not in dataset.schema.names]
    if missing:
        raise UserError(f"{path} has no {', '.join(missing)} column(s) (content_languages exists from "
                        f"CC-MAIN-2018-39 on); use --select full for this crawl")
    predicate = ((pc.field("fetch_status") == 200) & pc.field("content_mime_detected").isin(HTML_MIMES)
                 & pc.field("warc_filename").isin(wanted))
    counts: list[pl.DataFrame] = []
    selected: list[pl.DataFrame] = []
    for table in _joined(dataset.scanner(columns=list(COLUMNS), filter=predicate, batch_size=SCAN_ROWS).to_batches(),
                         SCAN_ROWS):
        frame = pl.from_arrow(table)
        counts.append(frame.group_by("warc_filename").agg(considered=pl.len()))
        selected.append(frame.filter(selection.matches(pl.col("content_languages"))).select(
            "warc_filename", pl.col("warc_record_offset").cast(pl.Int64), pl.col("warc_record_length").cast(pl.Int64)))
        if len(counts) >= COMPACT_EVERY:
            counts = [_sum_counts(counts)]
    return _sum_counts(counts), (pl.concat(selected, how="vertical_relaxed") if selected else _empty_selected())


def _joined(batches: Iterable[pa.RecordBatch], rows: int) -> Iterable[pa.Table]:
    """The batches joined into tables of at least `rows` rows (the last may hold fewer; no empty one): a scan
    yields a batch per row group, and the per-batch work in polars costs ~3 ms however few rows it has."""
    pending: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        if batch.num_rows:
            pending.append(batch)
            size += batch.num_rows
        if size >= rows:
            yield pa.Table.from_batches(pending)
            pending, size = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def _sum_counts(frames: list[pl.DataFrame]) -> pl.DataFrame:
    frames = [f.with_columns(pl.col("warc_filename").cast(pl.String)) for f in frames if f.height]
    if not frames:
        return pl.DataFrame({"warc_filename": [], "considered": []}, schema={"warc_filename": pl.String,
                                                                             "considered": pl.UInt32})
    return pl.concat(frames).group_by("warc_filename").agg(pl.col("considered").sum())


def _empty_selected() -> pl.DataFrame:
    return pl.DataFrame(schema={"warc_filename": pl.String, "warc_record_offset": pl.Int64,
                                "warc_record_length": pl.Int64})


def main(argv: list[str] | None = None) -> None:
    """`python -m curate.pipeline.sources.cc_index FULL_OUT INDEX_OUT --lang fin`: the recall of an index run."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("full_output", help="output of `curate run … --select full`")
    parser.add_argument("index_output", help="output of the same run with --select index (or index+neighbors)")
    parser.add_argument("--lang", required=True, help="the language (fin, fin_Latn)")
    args = parser.parse_args(argv)
    try:
        print(recall(args.full_output, args.index_output, args.lang))
    except UserError as error:
        raise SystemExit(f"error: {error}") from None


__all__ = ["AUTO", "SELECT_MODES", "CrawlIndex", "Recall", "Selection", "auto_select",
           "crawl_indexes",
           "group_by_records", "index_files", "recall", "released_ids", "select_files"]

if __name__ == "__main__":
    main()
