"""The corpus each curation step gives, rebuilt from one `curate run` output folder.

| variant | documents (from `<out>/<lang>/`) | weight |
|---|---|---|
| `raw` | `_work/stage1/` + `_work/removed/stage1/`: everything LID routed to the language, no threshold | 1 |
| `lid` | `_work/stage1/`: above the LID threshold | 1 |

(Stage-1 files are the run's, `<out>/_work/stage1/` and `<out>/_work/removed/stage1/`, one per unit holding every
language: only the row groups whose `lid_label` is the language are read; a file without the column is read whole.)
| `dedup` | `lid` minus the `dedup.*` removals of `_work/removed/stage3/` | 1 |
| `filtered` | `data/**`: the released documents, one copy each | 1 |
| `rehydrated` | `data/**` with its `weight` column (absent: 1) | `weight` |

Each corpus is one Parquet file `<out>/<lang>/ablation/corpora/<variant>.parquet` (`id`, `text`,
`weight`; row groups of 2,000 documents) in the order of the documents' 64-bit keys, a seeded-hash
order: any prefix a run reads is a uniform sample, and stage-file order (kept before removed, bucket
by bucket) never leaks into training. A variant far larger than the token budget is sampled: a
document is kept when its key falls below `fraction × 2⁶⁴`, so the corpus holds about
`tokens × BYTES_PER_TOKEN_BOUND` bytes of text, enough that no run exhausts it. A corpus is rebuilt
only when its inputs (paths, sizes, modification times) or its fraction change; it is written under a
temporary name and renamed, its `<variant>.json` (fingerprint, counts) last.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.errors import UserError
from curate.blocks.base import DROP_REASON
from curate.blocks.keys import document_keys
from curate.pipeline.execution.parts import LANGUAGE
from curate.pipeline.execution.storage import Output

VARIANTS = ("raw", "lid", "dedup", "filtered", "rehydrated")
"""The curation steps in pipeline order; each variant's corpus is a subset of the one before it
(up to the formatters' text changes of the released documents)."""
BYTES_PER_TOKEN_BOUND = 10
"""More UTF-8 bytes than any tokenizer averages per token on web text: a corpus of `tokens × 10`
bytes is never exhausted by a run of `tokens`."""
ROW_GROUP_ROWS = 2_000
READ_BATCH_ROWS = 8_192
CORPUS_FORMAT = 1  # bump when the way corpora are built changes: every corpus is rebuilt
WEIGHT = "weight"


@dataclass(frozen=True)
class Corpus:
    """One variant's corpus file and what it holds."""

    variant: str
    path: str
    fingerprint: str
    documents: int
    """Distinct documents in the file."""
    weighted_documents: int
    """Documents counted with their weight (what one epoch of training sees)."""
    text_bytes: int
    """UTF-8 bytes of the distinct documents' text."""
    fraction: float
    """Share of the variant's documents sampled into the file (1: all of them)."""


@dataclass(frozen=True)
class _Layout:
    """The folders of one language in a run's output that variants are built from."""

    root: Path

    @property
    def code(self) -> str:
        return self.root.name

    @property
    def stage1(self) -> list[Path]:
        return _parquet_files(self.root / "_work" / "stage1") + _parquet_files(self.root.parent / "_work" / "stage1")

    @property
    def removed_stage1(self) -> list[Path]:
        return (_parquet_files(self.root / "_work" / "removed" / "stage1")
                + _parquet_files(self.root.parent / "_work" / "removed" / "stage1"))

    @property
    def removed_stage3(self) -> list[Path]:
        return _parquet_files(self.root / "_work" / "removed" / "stage3")

    @property
    def released(self) -> list[Path]:
        return _parquet_files(self.root / "data")

    def documents(self, variant: str) -> list[Path]:
        """The files whose documents `variant` keeps (all or some of)."""
        if variant == "raw":
            return self.stage1 + self.removed_stage1
        return self.released if variant in ("filtered", "rehydrated") else self.stage1

    def inputs(self, variant: str) -> list[Path]:
        """Every file `variant` depends on."""
        return self.documents(variant) + (self.removed_stage3 if variant == "dedup" else [])


def _parquet_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.parquet") if p.is_file()) if folder.is_dir() else []


def parse_variants(text: str | list[str]) -> list[str]:
    """`raw,lid,filtered` → the named variants, in pipeline order; an unknown name is a `UserError`."""
    names = [v.strip() for v in (text.split(",") if isinstance(text, str) else text) if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        raise UserError(f"unknown variant(s) {', '.join(unknown) or '(none given)'}: "
                        f"choose from {', '.join(VARIANTS)}")
    return [v for v in VARIANTS if v in names]


def build_corpora(language_root: str | Path, variants: list[str], tokens: int,
                  out_dir: str | Path | None = None) -> dict[str, Corpus]:
    """Write (or reuse) the corpus of each variant for a run of `tokens` training tokens.

    `language_root` is `<out>/<lang>`; corpora go to `out_dir` (default `<lang>/ablation/corpora`)."""
    layout = _Layout(Path(language_root))
    _check_layout(layout, variants)
    out = Path(out_dir) if out_dir is not None else layout.root / "ablation" / "corpora"
    out.mkdir(parents=True, exist_ok=True)
    corpora = {}
    for variant in variants:
        inputs = layout.inputs(variant)
        fraction = min(1.0, tokens * BYTES_PER_TOKEN_BOUND / max(1, _text_bytes(variant, layout)))
        fingerprint = _fingerprint(variant, layout.root, inputs, fraction)
        meta = out / f"{variant}.json"
        known = Output(str(out)).read_json(str(meta))
        if known and known.get("fingerprint") == fingerprint and (out / f"{variant}.parquet").is_file():
            corpora[variant] = Corpus(**known)
            continue
        corpora[variant] = _write_corpus(variant, layout, out, fraction, fingerprint)
    return corpora


def _check_layout(layout: _Layout, variants: list[str]) -> None:
    if not layout.root.is_dir():
        raise UserError(f"{layout.root} does not exist: give the --output folder of a `curate run` "
                        "and a language it processed")
    needs_stage1 = any(v in variants for v in ("raw", "lid", "dedup"))
    if needs_stage1 and not layout.stage1:
        raise UserError(f"no stage-1 files under {layout.root / '_work' / 'stage1'}: the raw, lid and "
                        "dedup variants need a run's _work/ folder (rerun `curate run` into this output)")
    if any(v in variants for v in ("filtered", "rehydrated")) and not layout.released:
        raise UserError(f"no released shards under {layout.root / 'data'}: finish the `curate run` "
                        "first, or leave out the filtered and rehydrated variants")


def _text_bytes(variant: str, layout: _Layout) -> int:
    """The variant's text bytes, from Parquet footers (uncompressed size of the text column); the
    dedup variant subtracts its removals' text."""
    total = sum(_footer_text_bytes(f, layout.code) for f in layout.documents(variant))
    if variant == "dedup":
        for f in layout.removed_stage3:
            table = pq.read_table(f, columns=[DROP_REASON, "text"])
            dedup = pc.starts_with(table[DROP_REASON].fill_null(""), "dedup.")
            total -= int(pc.sum(pc.binary_length(table["text"].filter(dedup))).as_py() or 0)
    return max(0, total)


def _own_groups(metadata: pq.FileMetaData, code: str) -> list[int]:
    """The row groups of `code` in a file: those whose `lid_label` is `code` (a stage-1 file holds every language,
    each in row groups of its own), or every group of a file without the column."""
    leaves = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
    if LANGUAGE not in leaves:
        return list(range(metadata.num_row_groups))
    index = leaves.index(LANGUAGE)
    groups = []
    for group in range(metadata.num_row_groups):
        statistics = metadata.row_group(group).column(index).statistics
        if statistics is not None and statistics.has_min_max and statistics.min == statistics.max == code:
            groups.append(group)
    return groups


def _footer_text_bytes(path: Path, code: str) -> int:
    metadata = pq.ParquetFile(path).metadata
    index = metadata.schema.to_arrow_schema().get_field_index("text")
    if index < 0:
        raise UserError(f"{path} has no 'text' column: is this the output folder of a `curate run`?")
    return sum(metadata.row_group(g).column(index).total_uncompressed_size for g in _own_groups(metadata, code))


def _fingerprint(variant: str, root: Path, inputs: list[Path], fraction: float) -> str:
    files = [(f.relative_to(root.parent).as_posix(), f.stat().st_size, f.stat().st_mtime_ns) for f in inputs]
    text = json.dumps(dict(format=CORPUS_FORMAT, variant=variant, fraction=fraction, files=files))
    return hashlib.sha256(text.encode()).hexdigest()


def _dedup_removed_keys(files: list[Path]) -> np.ndarray:
    """Sorted keys of the documents stage 3 removed as duplicates (`dedup.*`)."""
    keys = [np.empty(0, np.uint64)]
    for f in files:
        table = pq.read_table(f, columns=["id", DROP_REASON])
        dedup = pc.starts_with(table[DROP_REASON].fill_null(""), "dedup.")
        keys.append(document_keys(table["id"].filter(dedup)).to_numpy())
    return np.unique(np.concatenate(keys))


def _batches(files: list[Path], code: str,
             with_weight: bool) -> Iterator[tuple[np.ndarray, pa.RecordBatch, np.ndarray]]:
    """(keys, `id` and `text` columns, weights) of `code`'s documents with a non-empty text, a batch at a time."""
    for f in files:
        parquet = pq.ParquetFile(f)
        groups = _own_groups(parquet.metadata, code)
        if not groups:
            continue
        names = parquet.schema_arrow.names
        missing = [c for c in ("id", "text") if c not in names]
        if missing:
            raise UserError(f"{f} has no {' or '.join(map(repr, missing))} column: "
                            "is this the output folder of a `curate run`?")
        weighted = with_weight and WEIGHT in names
        columns = ["id", "text", *([WEIGHT] if weighted else [])]
        for batch in parquet.iter_batches(batch_size=READ_BATCH_ROWS, row_groups=groups, columns=columns):
            present = pc.fill_null(pc.greater(pc.utf8_length(batch.column("text")), 0), False)
            batch = batch.filter(present)
            if not batch.num_rows:
                continue
            weights = (np.asarray(batch.column(WEIGHT).fill_null(1).to_numpy(zero_copy_only=False), np.int64)
                       if weighted else np.ones(batch.num_rows, np.int64))
            ids_and_texts = pa.record_batch([batch.column("id").cast(pa.large_string()),
                                             batch.column("text").cast(pa.large_string())], names=["id", "text"])
            yield document_keys(batch.column("id")).to_numpy(), ids_and_texts, weights


def _write_corpus(variant: str, layout: _Layout, out: Path, fraction: float, fingerprint: str) -> Corpus:
    dedup_removed = _dedup_removed_keys(layout.removed_stage3) if variant == "dedup" else None
    threshold = np.uint64(min(2**64 - 1, int(fraction * 2**64)))
    keys, rows, weights = [], [], []
    for batch_keys, batch_rows, batch_weights in _batches(layout.documents(variant), layout.code, variant == "rehydrated"):
        keep = batch_keys < threshold if fraction < 1 else np.ones(len(batch_keys), bool)
        if dedup_removed is not None:
            keep &= ~np.isin(batch_keys, dedup_removed)
        keys.append(batch_keys[keep])
        rows.append(batch_rows.filter(pa.array(keep)))
        weights.append(batch_weights[keep])
    if not sum(len(k) for k in keys):
        raise UserError(f"the {variant} variant has no documents under {layout.root}: "
                        "leave it out with --variants")
    # One row per document in key order; copies of a document (a materialized release) add their weights.
    unique, first, inverse = np.unique(np.concatenate(keys), return_index=True, return_inverse=True)
    summed = np.bincount(inverse, weights=np.concatenate(weights)).astype(np.int64)
    table = pa.Table.from_batches(rows).take(pa.array(first))
    table = table.append_column(WEIGHT, pa.array(summed if variant == "rehydrated" else np.ones(len(unique), np.int64)))
    path = out / f"{variant}.parquet"
    Output(str(out)).write_parquet(str(path), table, row_group_rows=ROW_GROUP_ROWS)
    corpus = Corpus(variant, str(path), fingerprint, table.num_rows, int(table[WEIGHT].to_numpy().sum()),
                    int(pc.sum(pc.binary_length(table["text"])).as_py() or 0), fraction)
    Output(str(out)).write_json(str(out / f"{variant}.json"), asdict(corpus))
    return corpus
