"""`curate optout OUT --list FILE`: take listed documents out of a finished output without rerunning anything.

Shard by shard: a shard's `url` column is read first; a shard with no listed document is left byte-identical,
one with some is rewritten row group by row group (never more than one row group in memory) into a temporary
file that then replaces it. Shards mix every crawl of the run (each is a hash sample), so one listed host may
touch most shards: the rewrite streams, it does not load the language. Then `stats.json` (released counts,
`optout.per_crawl[..]["list"]`, the lists) and the dataset card are updated, the removed documents' ids and URLs
go to `<lang>/_work/removed/optout/`, and the list is recorded under `_work/optout/lists/` so a rerun of
`curate run` on the output applies it again in stage 3.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.blocks.optout import ListOptOut, OptOutList, read_list
from curate.errors import UserError
from curate.pipeline.execution.storage import Output, RunLock

AUDIT = ("id", "url", "dump")


@dataclass
class TakedownResult:
    """What a takedown did to one language: documents removed (per crawl) and shards rewritten of all shards."""

    language: str
    removed: int = 0
    per_crawl: dict[str, int] = field(default_factory=dict)
    rewritten: list[str] = field(default_factory=list)
    shards: int = 0


def rewrite_shard(output: Output, path: str, block: ListOptOut) -> pa.Table | None:
    """Remove the listed rows of one shard in place (streamed by row group); returns the removed rows' audit
    columns, or None when the shard holds no listed document (then it is not touched)."""
    urls = pq.read_table(path, columns=["url"], filesystem=output.fs)["url"].to_pylist()
    listed = np.array([block.listed(u or "") for u in urls], bool)
    if not listed.any():
        return None
    source = pq.ParquetFile(path, filesystem=output.fs)
    removed = []
    temporary = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    start = 0
    with output.fs.open(temporary, "wb") as handle, \
            pq.ParquetWriter(handle, source.schema_arrow, compression="zstd") as writer:
        for index in range(source.num_row_groups):
            group = source.read_row_group(index)
            mask = listed[start:start + group.num_rows]
            start += group.num_rows
            removed.append(group.filter(pa.array(mask)).select([c for c in AUDIT if c in group.column_names]))
            kept = group.filter(pa.array(~mask))
            if kept.num_rows:
                writer.write_table(kept, row_group_size=max(group.num_rows, 1))
    if listed.all():
        output.fs.rm(temporary)
        output.fs.rm(path)
    else:
        output.fs.mv(temporary, path)
    return pa.concat_tables(removed)


def apply_takedown(output_root: str, lists: list[str], languages: list[str] | None = None) -> dict[str, TakedownResult]:
    """Apply the takedown `lists` (files or URLs) to every language of the output (or `languages`)."""
    output = Output(output_root)
    read = [read_list(location) for location in lists]
    if not any(item.entries for item in read):
        raise UserError(f"the list(s) {', '.join(lists)} hold no domain, host or URL prefix")
    codes = languages or sorted(p.rstrip("/").split("/")[-2] for p in output.fs.glob(output.path("*", "stats.json")))
    if not codes:
        raise UserError(f"{output_root} holds no finished run (no <lang>/stats.json): run `curate run` first")
    with RunLock(output):  # never while a run writes the output
        return _apply(output, output_root, codes, read)


def _apply(output: Output, output_root: str, codes: list[str], read: list[OptOutList]) -> dict[str, TakedownResult]:
    from curate.pipeline.execution.optout import record_lists, recorded_lists
    from curate.pipeline.publishing.documents import write_documents

    index = record_lists(output, read)
    block = ListOptOut.from_lists(recorded_lists(output))
    results = {}
    for code in codes:
        stats = output.read_json(output.language(code, "stats.json"))
        if stats is None:
            raise UserError(f"{output_root}/{code} has no stats.json: run `curate run` first")
        result = TakedownResult(code)
        shards = sorted(output.fs.glob(output.language(code, "data", "**", "*.parquet")))
        result.shards = len(shards)
        removed = []
        for path in shards:
            gone = rewrite_shard(output, path, block)
            if gone is not None:
                result.rewritten.append(path)
                removed.append(gone)
        per_crawl = Counter(d for table in removed for d in table["dump"].to_pylist())
        result.removed, result.per_crawl = sum(per_crawl.values()), dict(sorted(per_crawl.items()))
        if removed and result.removed:
            table = pa.concat_tables(removed)
            table = table.append_column("drop_reason", pa.array(["optout.list"] * table.num_rows, pa.string()))
            output.write_parquet(output.unique(output.language(code, "_work", "removed", "optout"), "takedown"), table)
        _update_stats(stats, result, index)
        output.write_json(output.language(code, "stats.json"), stats)
        results[code] = result
    write_documents(output_root, codes)
    return results


def _update_stats(stats: dict, result: TakedownResult, index: list[dict]) -> None:
    released = stats.setdefault("released", {})
    released["documents"] = int(released.get("documents", 0)) - result.removed
    per_dump = released.setdefault("per_dump", {})
    for crawl, count in result.per_crawl.items():
        per_dump[crawl] = int(per_dump.get(crawl, 0)) - count
        if per_dump[crawl] <= 0:
            del per_dump[crawl]
    optout = stats.setdefault("optout", {})
    if "list" not in optout.setdefault("applied", []):
        optout["applied"].append("list")
    optout["lists"] = index
    per_crawl = optout.setdefault("per_crawl", {})
    for crawl, count in result.per_crawl.items():
        per_crawl.setdefault(crawl, {})["list"] = int(per_crawl.get(crawl, {}).get("list", 0)) + count
    optout.setdefault("takedowns", []).append({
        "lists": [entry["digest"] for entry in index], "removed": result.removed,
        "shards_rewritten": len(result.rewritten), "shards": result.shards,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
