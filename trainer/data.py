"""Training data: Parquet sources -> token-share mixture -> packed fixed-length sequences.

Three small stateful pieces, each with `state_dict` / `load_state_dict`, chained by
`SequenceStream`:

* `ParquetSource` streams one source a row group at a time and yields tokenized documents
  (EOS appended). It honours the rehydration `weight` column and counts epochs.
* `Mixture` picks the next document from the source furthest behind its target token share.
* `Packer` concatenates documents and cuts windows of `seq_len + 1` tokens with a stride of
  `seq_len`, so every token is a training target exactly once (lossless packing).

Weights (curate's rehydration column, an integer number of repetitions per document): a source
whose largest weight is K has epochs of K passes over its files. A document of weight w is
emitted in exactly w of the K passes (which ones is a seeded, per-epoch choice), so

* over every full epoch it is seen exactly w times, and repetitions are a pass apart;
* within a partial epoch each pass includes it with probability w / K: a run that stops part way
  sees documents at rates proportional to their weight (weight 0 is never seen).

Without a weight column every weight is 1 and an epoch is one pass.

Order: every pass reads the row groups in a seeded permutation and each row group's selected rows in
another, so the seed changes which documents a run sees first (and the ablation's seed spread
measures data-order noise, not only model initialisation); the cursor counts positions in those
permutations, so a resumed source continues with the exact next document.

Everything here is torch-free, deterministic given the seed, and resumable from a state dict to
the exact document and token. pyarrow loads only where Parquet is read: the mixture, packing and
the loader also run on pre-tokenized documents (`benchmarks/trainer.py`) with numpy alone.
"""

from __future__ import annotations

import logging
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from curate.trainer.config import SourceSpec

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("curate.trainer")

_ORDER = 1
"""Version of the seeded document order (in the cursor state; also a seed key of the permutations)."""

Tokenize = Callable[[list[str]], list[list[int]]]
"""Texts -> token ids (no special tokens added)."""


class DataError(ValueError):
    """Unreadable or unusable training data; the message is one line that says what is wrong."""


class SourceExhausted(Exception):
    """A source ended and the run does not repeat data (`repeat=False`)."""


def resolve_parquet_files(path: str | Path) -> list[Path]:
    """The Parquet files of a source, sorted: the file itself, or every `**/*.parquet` under a
    folder (under its `data/` if it has one, as a curate output folder does), skipping `_work/`."""
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise DataError(f"source {str(path)!r} does not exist")
    root = p / "data" if (p / "data").is_dir() else p
    files = sorted(f for f in root.rglob("*.parquet")
                   if f.is_file() and "_work" not in f.relative_to(p).parts)
    if not files:
        raise DataError(f"source {str(path)!r} has no .parquet files")
    return files


def iter_texts(paths: Sequence[str | Path], text_column: str = "text") -> Iterator[str]:
    """Documents of text files (one a line, blank lines skipped), Parquet files, and folders of
    either (a folder without Parquet files: its `**/*.txt`)."""
    for path in paths:
        p = Path(path)
        if p.is_dir() and not any(p.rglob("*.parquet")):
            files: list[Path] = sorted(p.rglob("*.txt"))
        elif p.is_dir() or p.suffix == ".parquet":
            files = resolve_parquet_files(p)
        elif p.is_file():
            files = [p]
        else:
            raise DataError(f"text file {str(path)!r} does not exist")
        for f in files:
            if f.suffix == ".parquet":
                import pyarrow.parquet as pq

                pf = pq.ParquetFile(f)
                if text_column not in pf.schema_arrow.names:
                    raise DataError(f"{f} has no {text_column!r} column")
                for i in range(pf.num_row_groups):
                    column = pf.read_row_group(i, columns=[text_column]).column(0)
                    yield from (t for t in column.to_pylist() if t)
            else:
                with open(f, encoding="utf-8") as handle:
                    yield from (line.rstrip("\n") for line in handle if line.strip())


@dataclass(frozen=True)
class _RowGroup:
    file: int
    index: int
    num_rows: int
    first_row: int  # position of its first row in the whole source (for sharding)


class ParquetSource:
    """Streams one mixture source as tokenized documents, a row group at a time.

    Reads only the text (and weight) columns of one row group at a time; tokenizes the selected
    rows in chunks. Selection of a row in a pass: its data shard (`row % num_shards == shard`),
    its weight (see the module docstring) and a non-empty text. The cursor (epoch, pass, position
    in the pass's row-group order, position in the row group's row order) is the whole state: a
    resumed source re-reads its row group and continues with the next document.
    """

    def __init__(self, spec: SourceSpec, tokenize: Tokenize, eos_id: int, *, seed: int = 0,
                 shard: int = 0, num_shards: int = 1, repeat: bool = True,
                 text_column: str = "text", weight_column: str = "weight",
                 chunk_docs: int = 256) -> None:
        self.name = spec.name
        self.files = resolve_parquet_files(spec.path)
        root = Path(spec.path)  # files as checkpoints name them: relative to the source
        self._file_ids = [f.relative_to(root).as_posix() if root.is_dir() else f.name
                          for f in self.files]
        self._tokenize, self._eos_id, self._seed = tokenize, eos_id, seed
        self._shard, self._num_shards, self._repeat = shard, num_shards, repeat
        self._text_column, self._weight_column, self._chunk_docs = text_column, weight_column, chunk_docs
        self._row_groups, self._has_weight, self.passes_per_epoch = self._scan()
        self.epoch = self.pass_index = self.unit = self.row = 0
        self._docs_this_epoch = 0
        self._pending: deque[tuple[int, list[int]]] = deque()
        self._table_key: tuple[int, int] | None = None
        self._texts: pa.ChunkedArray | None = None
        self._weights: np.ndarray | None = None
        self._selection_key: tuple[int, int, int] | None = None
        self._selection = np.empty(0, dtype=np.int64)
        self._order_key: tuple[int, int] | None = None
        self._order = np.empty(0, dtype=np.int64)

    def _scan(self) -> tuple[list[_RowGroup], bool, int]:
        """Footers only: the row groups, whether a weight column exists, and the largest weight."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        groups: list[_RowGroup] = []
        first_row, has_weight, max_weight = 0, None, 1
        for f_index, f in enumerate(self.files):
            try:
                pf = pq.ParquetFile(f)
            except (OSError, pa.ArrowException) as err:
                raise DataError(f"cannot read {f}: {err}") from None
            names = pf.schema_arrow.names
            if self._text_column not in names:
                raise DataError(f"{f} has no {self._text_column!r} column")
            file_has_weight = self._weight_column in names
            if has_weight is not None and file_has_weight != has_weight:
                raise DataError(f"{f}: some files of source {self.name!r} have a "
                                f"{self._weight_column!r} column and some do not")
            has_weight = file_has_weight
            if file_has_weight:
                column = pf.read(columns=[self._weight_column]).column(0)
                if column.null_count < len(column) and len(column):
                    low, high = pc.min(column).as_py(), pc.max(column).as_py()
                    if low < 0:
                        raise DataError(f"{f}: negative {self._weight_column!r} values")
                    max_weight = max(max_weight, int(high))
            for g in range(pf.num_row_groups):
                n = pf.metadata.row_group(g).num_rows
                groups.append(_RowGroup(f_index, g, n, first_row))
                first_row += n
        return groups, bool(has_weight), max_weight

    # --- reading -------------------------------------------------------------------------------
    def _load(self, group: _RowGroup) -> None:
        """Read one row group's text (and weight) column, once per visit."""
        key = (group.file, group.index)
        if self._table_key == key:
            return
        import pyarrow.parquet as pq

        columns = [self._text_column] + ([self._weight_column] if self._has_weight else [])
        table = pq.ParquetFile(self.files[group.file]).read_row_group(group.index, columns=columns)
        self._texts = table.column(self._text_column)
        if self._has_weight:
            weights = table.column(self._weight_column).fill_null(1)
            self._weights = np.asarray(weights.to_numpy(), dtype=np.int64)
        else:
            self._weights = None
        self._table_key = key

    def _rng(self, *key: int) -> np.random.Generator:
        """A generator seeded by the run's seed, this source's name and `key`."""
        return np.random.default_rng([self._seed, zlib.crc32(self.name.encode()), *key])

    def _group_index(self) -> int:
        """The row group (index in file order) at the cursor: this pass's seeded permutation."""
        key = (self.epoch, self.pass_index)
        if self._order_key != key:
            self._order = self._rng(_ORDER, *key).permutation(len(self._row_groups))
            self._order_key = key
        return int(self._order[self.unit])

    def _selected_rows(self, index: int) -> np.ndarray:
        """Rows of row group `index` emitted in the current pass, in their seeded order, from the
        cursor's position on."""
        key = (self.epoch, self.pass_index, self.unit)
        if self._selection_key != key:
            import pyarrow.compute as pc

            assert self._texts is not None
            group = self._row_groups[index]
            rows = np.arange(group.num_rows)
            keep = (group.first_row + rows) % self._num_shards == self._shard
            keep &= np.asarray(pc.fill_null(pc.greater(pc.utf8_length(self._texts), 0), False))
            if self._weights is not None:
                k = self.passes_per_epoch
                # A seeded, per-epoch offset per row: it is emitted in w of the K passes.
                offset = self._rng(self.epoch, index).integers(0, k, size=group.num_rows)
                keep &= (self.pass_index - offset) % k < self._weights
            order = self._rng(_ORDER, self.epoch, self.pass_index, index)
            self._selection, self._selection_key = order.permutation(np.flatnonzero(keep)), key
        return self._selection[self.row:]

    def _fill(self) -> None:
        """Tokenize the next chunk of selected documents, moving to the next row group, pass or
        epoch as needed."""
        while not self._pending:
            if self.unit == len(self._row_groups):
                self._end_of_pass()
                continue
            index = self._group_index()
            self._load(self._row_groups[index])
            rows = self._selected_rows(index)[: self._chunk_docs]
            if len(rows) == 0:
                self.unit, self.row = self.unit + 1, 0
                continue
            assert self._texts is not None
            texts = self._texts.take(rows).to_pylist()
            for position, ids in enumerate(self._tokenize(texts), start=self.row):
                self._pending.append((position, [*ids, self._eos_id]))

    def _end_of_pass(self) -> None:
        if self.pass_index + 1 < self.passes_per_epoch:
            self.pass_index, self.unit, self.row = self.pass_index + 1, 0, 0
            return
        if self._docs_this_epoch == 0:
            raise DataError(f"source {self.name!r} has no document to train on "
                            "(empty texts, weight 0, or fewer rows than data shards)")
        if not self._repeat:
            log.info("source %r: epoch %d complete (%d documents); not repeating data: the run ends",
                     self.name, self.epoch + 1, self._docs_this_epoch)
            raise SourceExhausted(self.name)
        log.info("source %r: epoch %d complete (%d documents); starting epoch %d",
                 self.name, self.epoch + 1, self._docs_this_epoch, self.epoch + 2)
        self.epoch, self.pass_index, self.unit, self.row = self.epoch + 1, 0, 0, 0
        self._docs_this_epoch = 0

    def next_document(self) -> list[int]:
        """Token ids of the next document, EOS appended. Raises `SourceExhausted` at the end of
        the first epoch when not repeating."""
        self._fill()
        position, ids = self._pending.popleft()
        self.row = position + 1
        self._docs_this_epoch += 1
        return ids

    # --- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The cursor: the next document is the `row`-th selected row (in seeded order) of the
        `unit`-th row group of the pass's seeded order."""
        return dict(epoch=self.epoch, pass_index=self.pass_index, unit=self.unit, row=self.row,
                    docs_this_epoch=self._docs_this_epoch, files=list(self._file_ids),
                    order=_ORDER)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["files"] != self._file_ids:
            raise DataError(f"source {self.name!r} has different files than when the checkpoint "
                            "was written; resuming would not continue the same data")
        if state.get("order") != _ORDER:
            raise DataError(f"source {self.name!r}: the checkpoint was written by a trainer that read "
                            "documents in file order; resuming would not continue the same data")
        self.epoch, self.pass_index = state["epoch"], state["pass_index"]
        self.unit, self.row = state["unit"], state["row"]
        self._docs_this_epoch = state["docs_this_epoch"]
        self._pending.clear()
        self._selection_key = None


class Mixture:
    """Draws documents from several sources so that each gets its target share of tokens.

    The next document comes from the source furthest behind its share (largest
    `share * total_tokens - source_tokens`; ties go to the first source). Every source's token
    count therefore stays within one document of its target, deterministically.
    """

    def __init__(self, sources: Sequence[ParquetSource], shares: Sequence[float]) -> None:
        self.sources, self.shares = list(sources), list(shares)
        self.tokens = [0] * len(self.sources)
        self.documents = [0] * len(self.sources)

    def next_document(self) -> tuple[int, list[int]]:
        """(source index, token ids) of the next document."""
        total = sum(self.tokens)
        deficits = [share * total - tokens for share, tokens in zip(self.shares, self.tokens)]
        i = deficits.index(max(deficits))
        ids = self.sources[i].next_document()
        self.tokens[i] += len(ids)
        self.documents[i] += 1
        return i, ids

    def state_dict(self) -> dict[str, Any]:
        return dict(tokens=list(self.tokens), documents=list(self.documents),
                    sources={s.name: s.state_dict() for s in self.sources})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state["sources"]) != {s.name for s in self.sources}:
            raise DataError("the mixture's sources differ from the checkpoint's "
                            f"({', '.join(state['sources'])}); resume with the same --mix")
        self.tokens, self.documents = list(state["tokens"]), list(state["documents"])
        for s in self.sources:
            s.load_state_dict(state["sources"][s.name])


class Packer:
    """Lossless packing: documents are concatenated and cut into windows of `seq_len + 1` tokens
    with a stride of `seq_len` (inputs are `w[:-1]`, targets `w[1:]`), so every token after the
    first is a target exactly once. Remembers which source each token came from."""

    def __init__(self, seq_len: int, num_sources: int) -> None:
        self.seq_len, self.num_sources = seq_len, num_sources
        self._tokens: list[int] = []
        self._sources: list[int] = []

    def push(self, source: int, ids: list[int]) -> None:
        self._tokens.extend(ids)
        self._sources.extend([source] * len(ids))

    def ready(self) -> bool:
        return len(self._tokens) > self.seq_len

    def pop(self) -> tuple[np.ndarray, np.ndarray]:
        """One window (int64, `seq_len + 1`) and its target tokens counted per source."""
        n = self.seq_len
        window = np.asarray(self._tokens[: n + 1], dtype=np.int64)
        counts = np.bincount(self._sources[1 : n + 1], minlength=self.num_sources)
        del self._tokens[:n], self._sources[:n]
        return window, counts

    def state_dict(self) -> dict[str, Any]:
        return dict(tokens=list(self._tokens), sources=list(self._sources))

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._tokens, self._sources = list(state["tokens"]), list(state["sources"])


class SequenceStream:
    """One data shard: a mixture of sources packed into training windows."""

    def __init__(self, mixture: Mixture, seq_len: int) -> None:
        self.mixture = mixture
        self.packer = Packer(seq_len, len(mixture.sources))

    def next_sequence(self) -> tuple[np.ndarray, np.ndarray]:
        """(window of `seq_len + 1` token ids, target tokens per source)."""
        while not self.packer.ready():
            self.packer.push(*self.mixture.next_document())
        return self.packer.pop()

    def state_dict(self) -> dict[str, Any]:
        return dict(mixture=self.mixture.state_dict(), packer=self.packer.state_dict())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mixture.load_state_dict(state["mixture"])
        self.packer.load_state_dict(state["packer"])


def build_stream(specs: Sequence[SourceSpec], tokenize: Tokenize, eos_id: int, seq_len: int, *,
                 shard: int = 0, num_shards: int = 1, seed: int = 0, repeat: bool = True,
                 text_column: str = "text", weight_column: str = "weight") -> SequenceStream:
    """The `SequenceStream` of data shard `shard` of `num_shards`."""
    sources = [ParquetSource(spec, tokenize, eos_id, seed=seed, shard=shard, num_shards=num_shards,
                             repeat=repeat, text_column=text_column, weight_column=weight_column)
               for spec in specs]
    return SequenceStream(Mixture(sources, [s.share for s in specs]), seq_len)
