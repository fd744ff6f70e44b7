"""The robots.txt host table of a run: the newest robots.txt Common Crawl fetched for each host, by host hash.

Common Crawl lists, per crawl, the WARCs of the robots.txt responses it fetched in
`crawl-data/<crawl>/robotstxt.paths.gz`. The table is built in three rounds of Ray tasks under
`_work/robots/<fingerprint>/`:

1. `captures`: each group of robots.txt WARCs (at most 1,024 groups) → their captures (host, date, HTTP
   status, redirect target, body), split by host hash into `captures/<group>-<chunk>/part-NNNNN.parquet`;
2. `newest`: each host-hash partition → the newest capture per host among every crawl read;
3. `part-NNNNN.parquet`: each partition → its hosts' rules, redirects followed (RFC 9309 2.3.1.2: up to five
   hops, across hosts, to a `/robots.txt`, looked up in the `newest` partitions of the targets), sorted by
   host; columns `host`, `status` (the HTTP status that decided; -1: unreadable), `kind` (`rules`, `allow`,
   `disallow`), `digest`, `rules`.

RFC 9309 2.3.1.3-4: a host without a capture, a 4xx (or a redirect chain that ends nowhere) allows every
page (`allow`); a 5xx, or a record that cannot be read, disallows every page (`disallow`). Hosts are keyed
`scheme://host:port` (default port written out), as pages are in `curate.blocks.optout`. A `_SUCCESS.json`
holds the table's summary (counts, crawls read); the table is reused while the fingerprint (the robots.txt
WARCs read and the code) matches.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import zlib
from collections import Counter
from dataclasses import dataclass
from functools import partial
from urllib.parse import urljoin, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.blocks.optout import ALLOW, DISALLOW, RULES, host_key, lookup, partition_name, partition_of
from curate.errors import UserError
from curate.pipeline.execution.storage import Output
from curate.pipeline.sources.crawls import Source

log = logging.getLogger("curate")

MAX_REDIRECTS = 5  # RFC 9309 2.3.1.2
MAX_ROBOTS_BYTES = 500 * 1024  # RFC 9309 2.5: parse at least 500 KiB; more is cut there
MAX_CAPTURE_BYTES = 16 << 20  # a larger WARC record is skipped (counted as warc.too_large)
ROW_GROUP_ROWS = 1_000  # small row groups: a page batch's host filter reads few of them
CAPTURE_SCHEMA = pa.schema([("host", pa.string()), ("date", pa.string()), ("crawl", pa.string()),
                            ("status", pa.int32()), ("location", pa.string()), ("body", pa.string())])
TABLE_SCHEMA = pa.schema([("host", pa.string()), ("status", pa.int32()), ("kind", pa.string()),
                          ("digest", pa.string()), ("rules", pa.string())])


def rules_digest(rules: str) -> str:
    return hashlib.sha256(rules.encode("utf-8")).hexdigest()[:16]


def robots_files(source: Source, crawl: str) -> list[str] | None:
    """The robots.txt WARCs of `crawl` (paths relative to the source root); None without `robotstxt.paths.gz`."""
    listing = f"crawl-data/{crawl}/robotstxt.paths.gz"
    try:
        data = gzip.decompress(source.read_small(listing))
    except FileNotFoundError:
        return None
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise UserError(f"{source.location}/{listing} is damaged ({error}); fix or remove it, or use "
                        "--optout tdm,list") from None
    return [line.strip() for line in data.decode().splitlines() if line.strip()]


@dataclass(frozen=True)
class CaptureTask:
    """A group of robots.txt WARCs read by one task: `files` holds (crawl, path) pairs."""

    index: int
    files: tuple[tuple[str, str], ...]


@dataclass
class RobotsTable:
    """A built host table: where it is (relative to the output root), how it is split, what went into it."""

    directory: str
    partitions: int
    fingerprint: str
    summary: dict

    @property
    def hosts(self) -> int:
        return int(self.summary.get("hosts", 0))


def read_captures(location: str, output_root: str, directory: str, partitions: int, task: CaptureTask) -> dict:
    """A group of robots.txt WARCs → their captures, split by host hash into
    `captures/<task>-<chunk>/part-NNNNN.parquet` (a chunk every `CHUNK_ROWS` captures: memory stays bounded)."""
    source, output = Source(location), Output(output_root)
    counts: Counter = Counter()
    rows: list[dict] = []
    chunks = 0

    def flush() -> None:
        nonlocal rows, chunks
        table = pa.Table.from_pylist(rows, schema=CAPTURE_SCHEMA)
        parts = partition_of(table["host"].to_pylist(), partitions)
        for partition in np.unique(parts):
            path = output.path(directory, "captures", f"{task.index:06d}-{chunks:04d}", partition_name(int(partition)))
            output.write_parquet(path, table.filter(pa.array(parts == partition)))
        counts["robots.captures"] += len(rows)
        rows, chunks = [], chunks + 1

    for crawl, path in task.files:
        rows += _captures(source, crawl, path, counts)
        if len(rows) >= CHUNK_ROWS:
            flush()
    if rows:
        flush()
    return dict(counts)


def _captures(source: Source, crawl: str, path: str, counts: Counter) -> list[dict]:
    """The robots.txt responses of one WARC as capture rows."""
    from curate.blocks.warc import decode_html, responses

    rows: list[dict] = []
    stream = source.open(path)
    try:
        warc_counts: Counter = Counter()
        for response in responses(stream, MAX_CAPTURE_BYTES, warc_counts):
            url = response.warc["url"] or ""
            host = host_key(url)
            if host is None:
                counts["robots.bad_url"] += 1
                continue
            row = {"host": host, "date": response.warc["date"] or "", "crawl": crawl, "status": -1,
                   "location": None, "body": None}
            if response.status is None or not response.status.isdigit():
                counts["robots.unreadable"] += 1  # stays, as status -1: a disallow
                rows.append(row)
                continue
            row["status"] = int(response.status)
            location = response.http.get("location")
            row["location"] = urljoin(url, location) if location else None
            row["body"] = decode_html(response.body(MAX_ROBOTS_BYTES), response.http.get("content-type") or "") or ""
            rows.append(row)
        counts["robots.malformed_record"] += warc_counts.pop("warc.malformed_record", 0)
        warc_counts.pop("warc.records", None)
        counts.update(warc_counts)  # damaged gzip members, truncation
    finally:
        stream.close()
    return rows


def newest_per_host(output_root: str, directory: str, partition: int) -> int:
    """Partition `partition`: the newest capture of each host over every file (ties: the later crawl)."""
    output = Output(output_root)
    table = output.read_parquet(sorted(output.fs.glob(output.path(directory, "captures", "*",
                                                                  partition_name(partition)))))
    if not table.num_rows:
        table = CAPTURE_SCHEMA.empty_table()
    table = table.sort_by([("host", "ascending"), ("date", "descending"), ("crawl", "descending")])
    hosts = table["host"].to_numpy(zero_copy_only=False)
    first = np.ones(len(hosts), bool)
    first[1:] = hosts[1:] != hosts[:-1]
    table = table.filter(pa.array(first))
    output.write_parquet(output.path(directory, "newest", partition_name(partition)), table)
    return table.num_rows


def resolve(output_root: str, directory: str, partitions: int, partition: int) -> dict:
    """Partition `partition` of the table: each host's rules, redirects followed, as `part-NNNNN.parquet`."""
    output = Output(output_root)
    newest = output.read_parquet([output.path(directory, "newest", partition_name(partition))])
    counts: Counter = Counter()
    outcome: dict[str, tuple[int, str, str]] = {}
    pending: dict[str, dict] = {}  # host → its current capture in the chain
    hops: dict[str, int] = {}
    for row in newest.to_pylist():
        pending[row["host"]] = row
        hops[row["host"]] = 0
    while pending:
        targets: dict[str, str] = {}
        for host, capture in list(pending.items()):
            status = capture["status"]
            if 200 <= status < 300:
                outcome[host] = (status, RULES, capture["body"] or "")
            elif 300 <= status < 400 and capture["location"]:
                if hops[host] >= MAX_REDIRECTS:
                    outcome[host] = (status, ALLOW, "")  # 2.3.1.2: MAY assume unavailable
                    counts["robots.too_many_redirects"] += 1
                else:
                    target = host_key(capture["location"])
                    if target is None or urlsplit(capture["location"]).path != "/robots.txt":
                        outcome[host] = (status, ALLOW, "")  # not to a robots.txt the crawl could hold
                        counts["robots.redirect_elsewhere"] += 1
                    else:
                        targets[host] = target
                        continue
            elif 500 <= status < 600 or status < 0:
                outcome[host] = (status, DISALLOW, "")
            else:
                outcome[host] = (status, ALLOW, "")  # 4xx, other codes, a redirect without a target
            del pending[host]
        if not targets:
            break
        found = lookup(output, f"{directory}/newest", sorted(set(targets.values())), partitions)
        for host, target in targets.items():
            hops[host] += 1
            if target in found:
                pending[host] = found[target]
            else:  # the crawl has no capture of the target: nothing says no
                outcome[host] = (pending[host]["status"], ALLOW, "")
                counts["robots.redirect_without_capture"] += 1
                del pending[host]
    hosts = sorted(outcome)
    rules = [outcome[h][2] for h in hosts]
    table = pa.table({"host": pa.array(hosts, pa.string()),
                      "status": pa.array([outcome[h][0] for h in hosts], pa.int32()),
                      "kind": pa.array([outcome[h][1] for h in hosts], pa.string()),
                      "digest": pa.array([rules_digest(r) if r else "" for r in rules], pa.string()),
                      "rules": pa.array(rules, pa.string())}, schema=TABLE_SCHEMA)
    output.write_parquet(output.path(directory, partition_name(partition)), table, row_group_rows=ROW_GROUP_ROWS)
    kinds = Counter(outcome[h][1] for h in hosts)
    counts.update({f"robots.hosts_{kind}": n for kind, n in kinds.items()})
    counts["robots.hosts"] = len(hosts)
    return dict(counts)


MAX_CAPTURE_TASKS = 1_024  # the first round's tasks
CHUNK_ROWS = 200_000  # captures a task holds before writing them out (~200 MB)
MAX_PARTITIONS = 256


def partitions_for(files: int) -> int:
    """How many host-hash partitions: one per robots.txt WARC, at most 256 (a crawl's ~100,000 robots.txt WARCs
    hold a few tens of millions of hosts: ~100,000 hosts a partition)."""
    return max(1, min(MAX_PARTITIONS, files))


def capture_tasks(files: list[tuple[str, str]]) -> list[CaptureTask]:
    """`files` in at most `MAX_CAPTURE_TASKS` groups of consecutive files."""
    size = -(-len(files) // MAX_CAPTURE_TASKS)
    return [CaptureTask(n, tuple(files[start:start + size])) for n, start in enumerate(range(0, len(files), size))]


def build_robots_table(source: Source, crawls: list[str], output: Output, map_fn, settings: object,
                       fingerprint_fn) -> tuple[RobotsTable | None, list[str]]:
    """The host table from the robots.txt WARCs of `crawls` (built with `map_fn`, or reused when its
    fingerprint matches); also the crawls that have no `robotstxt.paths.gz`. None when no crawl has one."""
    files: list[tuple[str, str]] = []
    missing: list[str] = []
    for crawl in crawls:
        listed = robots_files(source, crawl)
        if listed is None:
            missing.append(crawl)
            continue
        files += [(crawl, path) for path in listed]
    if not files:
        return None, missing
    partitions = partitions_for(len(files))
    digest = fingerprint_fn(settings, partitions, files)
    directory = f"_work/robots/{digest[:16]}"
    done = output.read_json(output.path(directory, "_SUCCESS.json"))
    if done and done.get("fingerprint") == digest:
        return RobotsTable(directory, partitions, digest, done), missing
    if output.fs.exists(output.path(directory)):
        output.fs.rm(output.path(directory), recursive=True)  # a torn earlier attempt
    counts: Counter = Counter()
    root = output.root
    tasks = capture_tasks(files)
    for part in map_fn(partial(read_captures, source.location, root, directory, partitions), tasks):
        counts.update(part)
    map_fn(partial(newest_per_host, root, directory), list(range(partitions)))
    for part in map_fn(partial(resolve, root, directory, partitions), list(range(partitions))):
        counts.update(part)
    for scratch in ("captures", "newest"):
        output.fs.rm(output.path(directory, scratch), recursive=True)
    summary = {"fingerprint": digest, "crawls": sorted({crawl for crawl, _ in files}), "files": len(files),
               "partitions": partitions, "hosts": counts.pop("robots.hosts", 0), "counts": dict(sorted(counts.items()))}
    output.write_json(output.path(directory, "_SUCCESS.json"), summary)
    for earlier in output.fs.ls(output.path("_work", "robots"), detail=False):
        if earlier.rstrip("/").rsplit("/", 1)[-1] != digest[:16]:
            output.fs.rm(earlier, recursive=True)
    return RobotsTable(directory, partitions, digest, summary), missing


__all__ = ["ALLOW", "DISALLOW", "RULES", "RobotsTable", "build_robots_table", "host_key", "lookup", "partition_of",
           "robots_files"]
