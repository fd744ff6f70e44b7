"""Reference corpora for calibration: reading documents, and building documents from sentence-per-line text.

`read_reference(paths)` reads Parquet or JSONL files with a `text` column, or plain text files whose documents
are separated by blank lines. `documents_from_sentences(sentences)` groups consecutive sentences into
paragraphs (one a line) and paragraphs into documents, for corpora that come one sentence a line (treebanks,
translation test sets): one sentence a line would look like a list to the line-based filters.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from curate.language_configs.validate import ConfigError

_BLANK_LINES = re.compile(r"\n[ \t]*\n")


def _texts_from_parquet(path: Path) -> Iterator[str]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if "text" not in table.column_names:
        raise ConfigError(f"{path}: no `text` column (columns: {', '.join(table.column_names)})")
    yield from (t for t in table["text"].to_pylist() if t)


def _texts_from_jsonl(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise ConfigError(f"{path}:{number}: not a JSON object") from None
            if not isinstance(record, dict) or "text" not in record:
                raise ConfigError(f"{path}:{number}: a JSONL reference needs a `text` field on every line")
            if record["text"]:
                yield record["text"]


def _texts_from_text(path: Path) -> Iterator[str]:
    content = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    for document in _BLANK_LINES.split(content):
        if document.strip():
            yield document.strip("\n")


def read_reference(paths: Iterable[str | Path]) -> list[str]:
    """The documents of reference files: `.parquet`, `.jsonl` / `.json` / `.jsonl.gz` (a `text` column or
    field), anything else as text with documents separated by blank lines."""
    documents: list[str] = []
    for path in map(Path, paths):
        if not path.is_file():
            raise ConfigError(f"reference file {path} not found")
        name = path.name.lower()
        try:
            if name.endswith(".parquet"):
                documents += _texts_from_parquet(path)
            elif re.search(r"\.jsonl?(\.gz)?$", name):
                documents += _texts_from_jsonl(path)
            else:
                documents += _texts_from_text(path)
        except UnicodeDecodeError as error:
            raise ConfigError(f"{path}: not UTF-8 text (byte {error.start} is not): convert it first, e.g. "
                              f"`iconv -f windows-1252 -t utf-8 {path.name}`") from None
        except (OSError, EOFError, ValueError) as error:  # a damaged gzip or Parquet file (ArrowInvalid)
            raise ConfigError(f"{path}: cannot be read as a reference file ({error})") from None
    if not documents:
        raise ConfigError("the reference files hold no documents")
    return documents


def documents_from_sentences(sentences: Iterable[str], seed: int = 0, sentences_per_paragraph: tuple[int, int] = (2, 6),
                             paragraphs_per_document: tuple[int, int] = (2, 6)) -> list[str]:
    """Group consecutive sentences (in order) into paragraphs of `sentences_per_paragraph` sentences joined by a
    space, and paragraphs into documents of `paragraphs_per_document` lines; sizes drawn with `seed`."""
    rng = random.Random(seed)
    pending = [s.strip() for s in sentences if s.strip()]
    documents, index = [], 0
    while index < len(pending):
        paragraphs = []
        for _ in range(rng.randint(*paragraphs_per_document)):
            size = rng.randint(*sentences_per_paragraph)
            if index >= len(pending):
                break
            paragraphs.append(" ".join(pending[index: index + size]))
            index += size
        documents.append("\n".join(paragraphs))
    return documents
