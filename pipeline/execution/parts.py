"""A language's share of a stage file: a run of its row groups (`Part`), and the one-file-per-unit writer.

Stage 1 writes one kept file and one removed-audit file per unit, whatever the number of languages: every
language's rows, sorted by (`lid_label`, `doc_key`), each language in row groups of its own (a row group never
holds two languages). The unit's result records, per language, a `Part` of each file (its row groups, rows,
Parquet bytes and columns), so a reader of one language opens the file once and reads only its row groups and
its own columns (`stage1.write_languages` writes such a file). The readers (`streams.part_batches`, dedup,
decontamination) take parts; a plain path is a `Part` of the whole file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pyarrow.parquet as pq

LANGUAGE = "lid_label"  # the language column (LID's label: the language a row was routed to)
SHARED = "_shared"  # the removed-audit rows of the shared blocks (before LID: no language)


@dataclass(frozen=True)
class Part:
    """Row groups [start, stop) of `path` (stop None: to the end); `columns` are the part's own (None: all);
    `largest`: its largest row group's uncompressed bytes (what a reader holds of it at once; 0: not known)."""

    path: str
    start: int = 0
    stop: int | None = None
    rows: int = 0
    bytes: int = 0
    columns: tuple[str, ...] | None = None
    largest: int = 0

    def groups(self, metadata: pq.FileMetaData) -> range:
        return range(self.start, metadata.num_row_groups if self.stop is None else self.stop)

    def to_json(self) -> dict:
        return {**asdict(self), "columns": list(self.columns) if self.columns is not None else None}

    @classmethod
    def of(cls, value: Part | str | dict) -> Part:
        """A part from a manifest's record, a path (the whole file) or a part."""
        if isinstance(value, Part):
            return value
        if isinstance(value, str):
            return cls(value)
        columns = value.get("columns")
        return cls(value["path"], value.get("start", 0), value.get("stop"), value.get("rows", 0),
                   value.get("bytes", 0), tuple(columns) if columns is not None else None, value.get("largest", 0))


def group_bytes(metadata: pq.FileMetaData, groups: range) -> int:
    """Parquet (compressed) bytes of the row groups `groups`."""
    total = 0
    for group in groups:
        row_group = metadata.row_group(group)
        total += sum(row_group.column(i).total_compressed_size for i in range(row_group.num_columns))
    return total


def runs_of_groups(path: str, footer: pq.FileMetaData, runs: list[tuple[str, int, tuple[str, ...]]]) -> dict[str, dict]:
    """The `Part` (as JSON) of each run of rows a writer wrote in row groups of their own, in order: `runs` holds
    (name, rows, columns) for each, and the row groups follow the row counts."""
    parts, group = {}, 0
    for name, rows, columns in runs:
        start, seen = group, 0
        while seen < rows:
            seen += footer.row_group(group).num_rows
            group += 1
        largest = max((footer.row_group(g).total_byte_size for g in range(start, group)), default=0)
        parts[name] = Part(path, start, group, rows, group_bytes(footer, range(start, group)), columns,
                           largest).to_json()
    return parts


def language_parts(stage1: dict[str, dict], code: str, kind: str = "kept") -> list[Part]:
    """The parts of `code` (`kind`: kept or removed) over the committed stage-1 units, in path order (the order
    every reader takes them in: a record read twice keeps its first copy)."""
    parts = [Part.of(p) for m in stage1.values() for p in m["result"][f"{kind}_parts"].get(code, [])]
    return sorted(parts, key=lambda p: (p.path, p.start))
