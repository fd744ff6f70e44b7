"""Evaluation sets to decontaminate against: read from a spec, fingerprinted by content.

A spec names one set (`--decontaminate SPEC[,SPEC…]`, or a language config's `decontamination.sets`):

- `PATH` – plain text, one item a line (blank lines skipped): `../shared/data/text/flores200/fin_Latn.txt`.
- `PATH.jsonl#COLUMN` (also `.jsonl.gz`) or `PATH.parquet#COLUMN` – the named text column of each row; a list of
  strings in the column gives one item per string (MMLU's `choices`).
- `hf:ORG/DATASET:CONFIG:SPLIT#COLUMN` – a Hugging Face dataset, read with `datasets.load_dataset` from the local
  cache (`HF_HUB_OFFLINE=1` works; CONFIG may be empty: `hf:org/data::test#text`).
- Any of these prefixed with `NAME=` names the set (`flores=…/fin_Latn.txt`); without it the name is the file's
  stem or `<DATASET>_<CONFIG>_<SPLIT>`. A document the set removes gets `drop_reason = decontamination.<NAME>`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from curate.errors import UserError

HF_PREFIX = "hf:"
_NAME = re.compile(r"^([A-Za-z0-9_-]+)=(.+)$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class EvalSet:
    """One evaluation set: its name (in `decontamination.<name>`), the spec it came from, its items, and a
    content fingerprint (sha256 of the items: an edited set changes it, a moved file does not)."""

    name: str
    spec: str
    items: tuple[str, ...]
    fingerprint: str


def split_specs(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """`a.txt,b.jsonl#q` (or a list of such strings) → one spec each, in order, without repeats."""
    if not value:
        return []
    parts = [value] if isinstance(value, str) else list(value)
    return list(dict.fromkeys(s.strip() for p in parts for s in p.split(",") if s.strip()))


def content_fingerprint(items: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for item in items:
        digest.update(item.encode("utf-8") + b"\x00")
    return digest.hexdigest()[:16]


def load_set(spec: str) -> EvalSet:
    """Read the set a spec names; a missing file, column or dataset is one `UserError` line."""
    named = _NAME.match(spec)
    name, source = (named[1], named[2]) if named else (None, spec)
    if source.startswith(HF_PREFIX):
        items, default = _hf_items(source)
    else:
        items, default = _file_items(source)
    items = tuple(i for i in (item.strip() for item in items) if i)
    if not items:
        raise UserError(f"evaluation set {spec!r} has no items: give a file with one item a line, or a text column")
    return EvalSet(name or _UNSAFE.sub("_", default).strip("_") or "set", spec, items, content_fingerprint(items))


def load_sets(specs: list[str]) -> list[EvalSet]:
    """Every set of `specs`; two sets with one name is a `UserError` (their removals would be counted together)."""
    sets = [load_set(spec) for spec in specs]
    names = [s.name for s in sets]
    for name in names:
        if names.count(name) > 1:
            raise UserError(f"two evaluation sets are named {name!r}: name them apart with NAME=SPEC")
    return sets


def _file_items(source: str) -> tuple[list[str], str]:
    path_text, _, column = source.partition("#")
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise UserError(f"evaluation set {source!r}: no file {path}; give a text file, PATH.jsonl#COLUMN, "
                        f"PATH.parquet#COLUMN or hf:ORG/DATASET:CONFIG:SPLIT#COLUMN")
    stem = path.name.split(".")[0]
    suffixes = "".join(path.suffixes[-2:]).lower()
    tabular = suffixes.endswith((".jsonl", ".jsonl.gz", ".parquet"))
    if tabular and not column:
        raise UserError(f"evaluation set {source!r}: name the text column, as {path_text}#COLUMN")
    if column and not tabular:
        raise UserError(f"evaluation set {source!r}: a #COLUMN needs a .jsonl, .jsonl.gz or .parquet file")
    try:
        if suffixes.endswith(".parquet"):
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
            _check_column(source, column, names)
            return _strings(pq.read_table(path, columns=[column])[column].to_pylist()), stem
        if tabular:
            opener = gzip.open if suffixes.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as handle:
                rows = [json.loads(line) for line in handle if line.strip()]
            _check_column(source, column, sorted({k for row in rows for k in row}))
            return _strings(row.get(column) for row in rows), stem
        return path.read_text(encoding="utf-8").splitlines(), stem
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UserError(f"evaluation set {source!r}: cannot read {path} ({type(error).__name__}: {error})") from None


def _check_column(source: str, column: str, names: list[str]) -> None:
    if column not in names:
        raise UserError(f"evaluation set {source!r}: no column {column!r}; it has {', '.join(names) or 'none'}")


def _strings(values) -> list[str]:
    """Column values as items: a string is one item, a list of strings one item each, None none."""
    items: list[str] = []
    for value in values:
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            items += [str(v) for v in value if v is not None]
        else:
            items.append(str(value))
    return items


def parse_hf(source: str) -> tuple[str, str | None, str, str]:
    """`hf:ORG/DATASET:CONFIG:SPLIT#COLUMN` → (repo id, config or None, split, column)."""
    body, _, column = source.removeprefix(HF_PREFIX).partition("#")
    parts = body.split(":")
    if len(parts) != 3 or not parts[0] or not parts[2] or not column:
        raise UserError(f"evaluation set {source!r}: write a Hugging Face dataset as "
                        f"hf:ORG/DATASET:CONFIG:SPLIT#COLUMN (CONFIG may be empty: hf:ORG/DATASET::test#text)")
    return parts[0], parts[1] or None, parts[2], column


def _hf_items(source: str) -> tuple[list[str], str]:
    repo, config, split, column = parse_hf(source)
    try:
        import datasets
    except ImportError:
        raise UserError(f"evaluation set {source!r} needs the `datasets` package: pip install datasets") from None
    try:
        data = datasets.load_dataset(repo, config, split=split)
    except Exception as error:  # noqa: BLE001 - offline without a cached copy, or a wrong config/split: one line
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(
            f"evaluation set {repo} (config {config or 'default'}, split {split}) cannot be read from the local "
            f"Hugging Face cache or the Hub ({type(error).__name__}: {message[:200]}); load it once with network "
            f"(datasets.load_dataset), point HF_HOME at a cache that has it, or give a local file"
        ) from None
    _check_column(source, column, list(data.column_names))
    default = "_".join(p for p in (repo.split("/")[-1], config, split) if p)
    return _strings(list(data[column])), default
