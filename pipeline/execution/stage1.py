"""Stage 1, one unit (a group of WARCs): read → shared blocks → LID → route by language → language blocks.

The shared blocks run in `Graph.shared`'s order: URL filter → opt-outs → cheap parse and LID-first prefilter
→ extraction (`curate.pipeline.execution.graph.build_graph`). Writes two files whatever the number of languages:
`_work/stage1/<unit>-….parquet`, every language's kept documents (sorted by (`lid_label`, `doc_key`), each
language in row groups of ~4 MB of its own, so a reader of one language, or of a bucket, a key range of it,
reads only its row groups; the bucket count is chosen after stage 1 from the bytes written), and
`_work/removed/stage1/<unit>-….parquet`, the removed documents with `drop_reason` (the shared blocks' removals
too). The result records each language's `Part` of each (`parts.py`); documents of other languages
(`prefilter.other_language`, `lid.other_language`) are only counted. Returns small stats; the caller commits
the manifest.
"""

from __future__ import annotations

import io
import os
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field, replace

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.blocks import faults
from curate.blocks.base import DROP_REASON, Block, mark_dropped, split_dropped
from curate.blocks.keys import DOC_KEY, document_keys
from curate.blocks.prefilter import CLD2_RULED_OUT, Prefilter
from curate.blocks.warc import WarcReader
from curate.errors import UserError
from curate.pipeline.execution.graph import Graph
from curate.pipeline.execution.parts import SHARED, runs_of_groups
from curate.pipeline.sources.crawls import Source, WarcFile
from curate.pipeline.execution.storage import Output
from curate.pipeline.execution.streams import conform, unified_schema

TRANSIENT_COLUMNS = ("html", "words", "http_tdm_reservation", "http_tdm_policy", "tdm_policy")
ROW_GROUP_BYTES = 4 << 20  # kept rows per row group (Arrow bytes): the granularity later buckets read at
AUDIT_GROUP_ROWS = 10_000  # removed-audit rows per row group
KEPT_STATISTICS = [DOC_KEY, "lid_label"]  # what readers skip row groups by (min/max of text would swell footers)
AUDIT_COLUMNS = ("id", "url", "dump", "file_path", DROP_REASON, "tdm_policy")
MAX_ERRORS = 100  # documents a block may raise on (per language) before the run stops: a bug, not bad input
INPUT_ATTEMPTS = 3  # opens of a missing input before it is counted missing (a listing ahead of its upload)
INPUT_RETRY_S = 0.5


class CodeFault(UserError):
    """A block raised on more documents than the budget allows: the run stops with one line."""


@dataclass
class BlockErrors:
    """Documents a block raised on: each is dropped as `error.<block>` (the rest of its batch goes on), the first
    traceback of each (block, exception type) is saved as `_work/errors/<block>-<type>.txt`, and past `budget`
    documents the unit stops with a `CodeFault` naming the block and the saved traceback."""

    output: str
    budget: int = MAX_ERRORS
    documents: int = 0
    saved: dict[str, str] = field(default_factory=dict)

    def record(self, block: str, error: BaseException) -> None:
        kind = f"{block}-{type(error).__name__}"
        if kind not in self.saved:
            output = Output(self.output)
            path = output.path("_work", "errors", f"{kind}.txt")
            if not output.fs.exists(path):
                output.write_bytes(path, "".join(traceback.format_exception(error)).encode())
            self.saved[kind] = path
        self.documents += 1
        if self.documents > self.budget:
            raise CodeFault(budget_message(block, type(error).__name__, self.documents, self.budget,
                                           self.saved[kind]))


def budget_message(block: str, kind: str, documents: int, budget: int, traceback_file: str) -> str:
    return (f"block {block} raised {kind} on {documents:,} documents, more than --max-errors {budget}: a bug in the "
            f"block, not bad input; its first traceback is in {traceback_file}; fix the block, then rerun the same "
            f"command to resume")


@dataclass(frozen=True)
class Unit:
    """A group of WARCs of one crawl (whole, or only their index-selected ranges), processed by one worker call."""

    id: str
    files: tuple[WarcFile, ...]


@dataclass
class UnitResult:
    """What a unit reports back: the files it wrote (one kept, one removed; one of each per part of a bisected
    unit), each language's parts of them (`Part` as JSON; removals of the shared blocks under "_shared") and
    counts."""

    unit_id: str
    files: list[str] = field(default_factory=list)
    kept_files: list[str] = field(default_factory=list)
    removed_files: list[str] = field(default_factory=list)
    kept_parts: dict[str, list[dict]] = field(default_factory=dict)
    removed_parts: dict[str, list[dict]] = field(default_factory=dict)
    kept_bytes: dict[str, int] = field(default_factory=dict)  # Parquet bytes of kept rows: what sizes the buckets
    counts: dict[str, int] = field(default_factory=dict)
    language_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    language_mix: dict[str, int] = field(default_factory=dict)
    documents_read: int = 0
    seconds: float = 0.0
    bytes_read: int = 0
    warc_bytes: int = 0  # the size of the unit's WARCs: what a full run reads (index runs read `bytes_read` of it)
    quarantined: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # "<file>: missing" / "<file>: empty": retried by a rerun


@dataclass
class PrefilterGate:
    """Whether the LID-first prefilter still pays in a unit. It drops other languages' pages before extraction;
    where nearly every page is a run language (a language's own sites, records the index chose) it only adds
    its cost. It runs on the unit's first `sample_pages` pages and steps aside for the rest when more than
    `max_pass_share` of them passed (1: it never does); it never runs on index-selected records. Its CLD2 pass
    alone steps aside when more than `max_cld2_pass_share` of the sample passed CLD2."""

    sample_pages: int = 64
    max_pass_share: float = 0.95  # below it, extracting the other pages costs more than the prefilter on all
    max_cld2_pass_share: float = 0.75  # above it, CLD2 on every page (~1.3 ms) costs more than the fastText pass
    seen: int = 0                      # it saves on the pages it rules out (~5 ms)
    passed: int = 0
    cld2_passed: int = 0

    def parts(self, batch: pa.Table) -> list[pa.Table]:
        """The batch, cut where the sample ends (so the decision applies from the next page on)."""
        needed = self.sample_pages - self.seen
        if 0 < needed < batch.num_rows:
            return [batch.slice(0, needed), batch.slice(needed)]
        return [batch]

    def active(self, index_selected: bool) -> bool:
        if index_selected:
            return False
        return self.seen < self.sample_pages or self.passed <= self.max_pass_share * self.seen

    def prefilter(self, block: Prefilter) -> Prefilter:
        """`block`, without its CLD2 pass once the sample showed that pass letting most pages through."""
        sampled = self.seen >= self.sample_pages
        if block.cld2 and sampled and self.cld2_passed > self.max_cld2_pass_share * self.seen:
            return replace(block, cld2=())
        return block

    def observe(self, pages: int, passed: int, cld2_passed: int) -> None:
        if self.seen < self.sample_pages:
            self.seen += pages
            self.passed += passed
            self.cld2_passed += cld2_passed


@dataclass
class Stage1Work:
    """Everything a worker needs for stage-1 units (picklable: settings and blocks, no models)."""

    graph: Graph
    source: str
    output: str
    reader: WarcReader
    max_errors: int = MAX_ERRORS
    prefilter_gate: PrefilterGate = field(default_factory=PrefilterGate)  # its settings; each unit starts afresh

    def run(self, unit: Unit) -> UnitResult:
        started = time.monotonic()
        output = Output(self.output)
        source = Source(self.source) if self.source else None
        counts: Counter = Counter()
        mix: Counter = Counter()
        per_language = {code: Counter() for code in self.graph.languages}
        kept = {code: [] for code in self.graph.languages}
        removed: dict[str, list[pa.Table]] = {code: [] for code in self.graph.languages}
        removed[SHARED] = []
        documents = 0
        bytes_read = warc_bytes = 0
        missing: list[str] = []
        errors = BlockErrors(self.output, self.max_errors)
        gate = replace(self.prefilter_gate, seen=0, passed=0, cld2_passed=0)
        prefiltered = any(block.name == Prefilter.name for block in self.graph.shared)
        for warc in unit.files:
            poison = faults.armed("read_file")
            if poison and poison in warc.path:
                os._exit(87)  # a worker that dies on this file every time: tests bisection and quarantine
            for attempt in range(INPUT_ATTEMPTS):
                stream = source.open(warc.path, warc.spans()) if source else open(warc.path, "rb")
                try:
                    for batch in self.reader.read(stream, warc.name if source else warc.path, warc.crawl, counts):
                        documents += batch.num_rows
                        for part in gate.parts(batch) if prefiltered and warc.ranges is None else [batch]:
                            self._batch(part, counts, mix, per_language, kept, removed, errors, gate,
                                        warc.ranges is not None)
                    break
                except FileNotFoundError:  # lazy opens: raised before any record was read
                    if attempt + 1 < INPUT_ATTEMPTS:
                        time.sleep(INPUT_RETRY_S * 2 ** attempt)
                finally:
                    read = getattr(stream, "fetched", getattr(stream, "position", 0))  # ranged: with merged gaps
                    bytes_read += read
                    stream.close()
            else:
                counts["input.missing"] += 1
                missing.append(f"{warc.canonical}: missing")
                continue
            if not read:
                counts["input.empty"] += 1
                missing.append(f"{warc.canonical}: empty")
            if warc.ranges is not None:
                counts["index.records_considered"] += warc.considered
                counts["index.records_selected"] += warc.records
                warc_bytes += (source.size(warc.path) if source else None) or 0
            else:
                warc_bytes += read
        result = UnitResult(unit.id, files=[f.canonical for f in unit.files], counts=dict(counts),
                            language_mix=dict(mix), documents_read=documents, bytes_read=bytes_read,
                            warc_bytes=warc_bytes, language_counts={c: dict(v) for c, v in per_language.items()},
                            missing=missing)
        tables = {code: _sorted_kept(_concat(kept[code])) for code in self.graph.languages}
        path = output.unique(output.path("_work", "stage1"), unit.id)
        parts = write_languages(output, path, tables, _rows_per_group, KEPT_STATISTICS)
        result.kept_files = [path] if parts else []
        result.kept_parts = {code: [part] for code, part in parts.items()}
        result.kept_bytes = {code: parts[code]["bytes"] if code in parts else 0 for code in self.graph.languages}
        faults.kill_point("mid_unit_write")
        path = output.unique(output.path("_work", "removed", "stage1"), unit.id)
        parts = write_languages(output, path, {code: _concat(tables) for code, tables in removed.items()},
                                lambda table: AUDIT_GROUP_ROWS)
        result.removed_files = [path] if parts else []
        result.removed_parts = {code: [part] for code, part in parts.items()}
        result.seconds = time.monotonic() - started
        return result

    def _batch(self, batch, counts, mix, per_language, kept, removed, errors: BlockErrors, gate: PrefilterGate,
               index_selected: bool) -> None:
        batch = batch.append_column(DOC_KEY, document_keys(batch["id"]))
        for block in self.graph.shared:
            if block.name == Prefilter.name:
                if not gate.active(index_selected):
                    counts["prefilter.stepped_aside"] += batch.num_rows  # pages extracted without the prefilter
                    continue
                lighter = gate.prefilter(block)
                if lighter is not block:
                    counts["prefilter.cld2_stepped_aside"] += batch.num_rows  # read by the fastText pass alone
                block = lighter
            pages, ruled_out = batch.num_rows, counts[CLD2_RULED_OUT]
            batch, dropped = _run_block(block, batch, counts, errors)
            if block.name == Prefilter.name:
                gate.observe(pages, batch.num_rows, pages - (counts[CLD2_RULED_OUT] - ruled_out))
            if dropped.num_rows and block.name != Prefilter.name:  # other languages are only counted
                removed[SHARED].append(dropped.select([c for c in AUDIT_COLUMNS if c in dropped.column_names]))
        if not batch.num_rows:
            return
        batch = self.graph.lid(batch)
        labels = batch["lid_label"]
        mix.update(labels.to_pylist())
        routed = pc.is_in(labels, pa.array(list(self.graph.languages)))
        counts["lid.other_language"] += batch.num_rows - pc.sum(routed).as_py() if batch.num_rows else 0
        for code, graph in self.graph.languages.items():
            rows = batch.filter(pc.equal(labels, code))
            if not rows.num_rows:
                continue
            rows = mark_dropped(rows, pc.less(rows["language_score"], graph.min_lid_score), "lid.low_score")
            rows, dropped = split_dropped(rows)
            parts = [dropped]
            for block in graph.stage1:
                if not rows.num_rows:
                    break
                rows, dropped = _run_block(block, rows, per_language[code], errors)
                parts.append(dropped)
            per_language[code]["lid.low_score"] += parts[0].num_rows
            per_language[code]["kept"] += rows.num_rows
            kept[code].append(_drop_transient(rows))
            removed[code].extend(_drop_transient(p) for p in parts if p.num_rows)


def _sorted_kept(table: pa.Table) -> pa.Table:
    """Kept rows as stored: sorted by doc_key, without `drop_reason` (all null)."""
    if not table.num_rows:
        return table
    table = table.sort_by([(DOC_KEY, "ascending")])
    return table.drop_columns([DROP_REASON]) if DROP_REASON in table.column_names else table


def _rows_per_group(table: pa.Table) -> int:
    """Rows per row group for about `ROW_GROUP_BYTES` of `table`'s rows."""
    return max(64, ROW_GROUP_BYTES * table.num_rows // max(table.nbytes, 1))


def write_languages(output: Output, path: str, tables: dict[str, pa.Table], group_rows,
                    statistics: list[str] | None = None) -> dict[str, dict]:
    """Write the tables of several languages as one zstd Parquet file at `path`, language by language (in sorted
    order, each table's rows as given), each in row groups of `group_rows(table)` rows that never span two
    languages; returns each language's `Part` (as JSON), none for an empty table. Writes nothing when all are.
    `statistics`: the columns whose min/max the footer keeps (None: all)."""
    tables = {code: table for code, table in sorted(tables.items()) if table.num_rows}
    if not tables:
        return {}
    schema = unified_schema([t.schema for t in tables.values()])
    buffer = io.BytesIO()
    with pq.ParquetWriter(buffer, schema, compression="zstd",
                          write_statistics=True if statistics is None else statistics) as writer:
        for table in tables.values():
            writer.write_table(conform(table, schema), row_group_size=group_rows(table))
    data = buffer.getvalue()
    metadata = pq.read_metadata(io.BytesIO(data))
    output.write_bytes(path, data)
    return runs_of_groups(path, metadata, [(code, t.num_rows, tuple(t.column_names)) for code, t in tables.items()])



def merge_results(unit_id: str, results: list[UnitResult]) -> UnitResult:
    """One result for a unit that ran in parts (after a failure was bisected)."""
    merged = UnitResult(unit_id)
    counts: Counter = Counter()
    mix: Counter = Counter()
    languages: dict[str, Counter] = {}
    for part in results:
        merged.files += part.files
        merged.quarantined += part.quarantined
        merged.missing += part.missing
        merged.kept_files += part.kept_files
        merged.removed_files += part.removed_files
        for target, source in ((merged.kept_parts, part.kept_parts), (merged.removed_parts, part.removed_parts)):
            for code, parts in source.items():
                target.setdefault(code, []).extend(parts)
        for code, size in part.kept_bytes.items():
            merged.kept_bytes[code] = merged.kept_bytes.get(code, 0) + size
        counts.update(part.counts)
        mix.update(part.language_mix)
        for code, values in part.language_counts.items():
            languages.setdefault(code, Counter()).update(values)
        merged.documents_read += part.documents_read
        merged.bytes_read += part.bytes_read
        merged.warc_bytes += part.warc_bytes
        merged.seconds += part.seconds
    merged.counts, merged.language_mix = dict(counts), dict(mix)
    merged.language_counts = {code: dict(values) for code, values in languages.items()}
    merged.kept_files.sort()
    merged.removed_files.sort()
    for parts in (*merged.kept_parts.values(), *merged.removed_parts.values()):
        parts.sort(key=lambda part: (part["path"], part["start"]))
    return merged


def _run_block(block: Block, batch: pa.Table, counts: Counter,
               errors: BlockErrors | None = None) -> tuple[pa.Table, pa.Table]:
    """(rows kept, rows dropped) by `block`; with `errors`, a batch it raises on is run again a document at a time
    and the documents it raises on are dropped as `error.<block>` (see `BlockErrors`)."""
    try:
        batch = _call_block(block, batch)
    except Exception as error:  # noqa: BLE001 - a bug in the block: isolated to its documents below
        if errors is None or isinstance(error, UserError):
            raise
        batch = _per_document(block, batch, errors)
    live, dropped = split_dropped(batch)
    if dropped.num_rows:
        counts.update(dropped[DROP_REASON].to_pylist())
    return live, dropped


def _call_block(block: Block, batch: pa.Table) -> pa.Table:
    if "url" in batch.column_names:
        faults.block_error_point(block.name, batch["url"].to_pylist())
    return block(batch)


def _per_document(block: Block, batch: pa.Table, errors: BlockErrors) -> pa.Table:
    """`block` over each document of `batch` alone: the ones it raises on are dropped as `error.<block>`."""
    parts = []
    for index in range(batch.num_rows):
        row = batch.slice(index, 1)
        try:
            parts.append(_call_block(block, row))
        except Exception as error:  # noqa: BLE001 - counted and saved by `errors`
            if isinstance(error, UserError):
                raise
            errors.record(block.name, error)
            parts.append(mark_dropped(row, pa.array([True]), f"error.{block.name}"))
    return _concat(parts) if parts else batch


def _drop_transient(table: pa.Table) -> pa.Table:
    return table.drop_columns([c for c in TRANSIENT_COLUMNS if c in table.column_names])


def _concat(tables: list[pa.Table]) -> pa.Table:
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return pa.table({})
    return pa.concat_tables(tables, promote_options="default")
