"""Was a training source decontaminated against a held-out text? Read from the source's `stats.json`.

`curate run --decontaminate X` records each evaluation set's content fingerprint in `<out>/<lang>/stats.json`
(`decontamination.sets.<name>.fingerprint`: sha256 of the set's stripped, non-empty items, each followed by a NUL,
first 16 hex digits; `curate.blocks.evaluation_sets.content_fingerprint`, which a test pins to `text_fingerprint`:
the trainer imports nothing from the curation side). `curate train --eval-text X` and `curate ablate --eval X`
print one line per source whose stats.json lists no set with X's content.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def text_fingerprint(items: list[str]) -> str:
    digest = hashlib.sha256()
    for item in (i.strip() for i in items):
        if item:
            digest.update(item.encode("utf-8") + b"\x00")
    return digest.hexdigest()[:16]


def eval_fingerprint(path: str, text_column: str = "text") -> str | None:
    """The content fingerprint of a held-out text (`.txt`: a document a line; Parquet: `text_column`)."""
    file = Path(path)
    try:
        if file.suffix == ".parquet":
            import pyarrow.parquet as pq

            return text_fingerprint([str(v) for v in pq.read_table(file, columns=[text_column])[text_column].to_pylist()
                                     if v is not None])
        return text_fingerprint(file.read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError, KeyError, ValueError):
        return None


def source_stats(path: str) -> dict | None:
    """The `stats.json` of the curate output a source comes from (`out/fin_Latn`, its `data/`, or a shard in it)."""
    here = Path(path)
    for folder in (here, here.parent, here.parent.parent):
        stats = folder / "stats.json"
        if stats.is_file():
            try:
                return json.loads(stats.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
    return None


def decontamination_notes(sources: list[tuple[str, str]], eval_texts: list[str], text_column: str = "text") -> list[str]:
    """One line per (source, held-out text) where the source is a curate output not decontaminated against it."""
    notes = []
    for name, path in sources:
        stats = source_stats(path)
        if stats is None:
            continue
        sets = (stats.get("decontamination") or {}).get("sets") or {}
        fingerprints = {s.get("fingerprint") for s in sets.values()}
        for text in eval_texts:
            if eval_fingerprint(text, text_column) not in fingerprints:
                listed = ", ".join(sets) or "no evaluation set"
                notes.append(f"note: training source {name} was not decontaminated against {text} (its stats.json "
                             f"lists {listed}): the held-out bits per byte may be optimistic; rerun curate run with "
                             f"--decontaminate {text}")
    return notes
