"""Decontamination in a run: count, once per run and set, how many documents of the language contain each entry of
the index (Ray tasks over the stage-1 files), take out the common ones (more than K documents) before stage 3, and
summarise what stage 3 removed for stats.json, the card and the report.

The counts are cached under `<lang>/_work/decontamination/<key>.json` (the key covers the index, K and the stage-1
files), so a rerun with the same sets and stage 1 counts nothing again; an edited set reruns this pass, stage 3 and
the final stage, never stage 1.
"""

from __future__ import annotations

import logging
from collections import Counter
from functools import partial

import pyarrow.parquet as pq

from curate.blocks.base import DROP_REASON
from curate.blocks.decontamination import ITEMS, REASON, Decontaminate, count_entries
from curate.pipeline.execution.parts import Part
from curate.pipeline.execution.provenance import fingerprint
from curate.pipeline.execution.storage import Output
from curate.pipeline.execution.streams import part_groups, read_footer, row_groups

log = logging.getLogger("curate")


def block_of(stage3: list) -> Decontaminate | None:
    return next((b for b in stage3 if isinstance(b, Decontaminate)), None)


def _count_file(output_root: str, block: Decontaminate, part: Part) -> dict[int, int]:
    """{entry: documents} over one stage-1 part, a row group at a time."""
    output, counts = Output(output_root), Counter()
    for rows in part_groups(output, part, read_footer(output, part.path), columns=["text"]):
        counts.update(count_entries(block.index, block.tokenizer, [t or "" for t in rows["text"].to_pylist()]))
    return dict(counts)


def prepare(code: str, stage3: list, kept_files: list[Part], output: Output, output_root: str, map_fn) -> None:
    """Count the index's entries over the language's stage-1 documents (`map_fn`: Ray tasks, one a part) and take
    the entries found in more than `max_documents` documents out of the block's index (reported in stats)."""
    block = block_of(stage3)
    if block is None or not kept_files:
        return
    key = fingerprint(block.index.digest(), block.max_documents,
                      sorted([output.relative(p.path), p.start, p.stop] for p in kept_files))
    path = output.language(code, "_work", "decontamination", f"{key}.json")
    cached = output.read_json(path)
    if cached is None:
        counts: Counter = Counter()
        for part in map_fn(partial(_count_file, output_root, block), kept_files):
            counts.update(part)
        cached = {"counts": {str(e): c for e, c in sorted(counts.items())}}
        output.write_json(path, cached)
    common = {int(e): c for e, c in cached["counts"].items() if c > block.max_documents}
    if common:
        texts = {block.index.entry_text(e, block.tokenizer): c for e, c in sorted(common.items())}
        log.info("%s: %d common n-grams ignored (in more than %d documents)", code, len(common), block.max_documents)
        block.index = block.index.without(sorted(common), texts)


def summary(block: Decontaminate | None, stage3: dict[int, dict], output: Output) -> dict | None:
    """Per set: its spec, content fingerprint, items, documents removed and items found; the ignored common text."""
    if block is None:
        return None
    index = block.index
    removed: Counter = Counter()
    for manifest in stage3.values():
        removed.update({k: v for k, v in manifest["result"]["counts"].items() if k.startswith(REASON + ".")})
    found: dict[str, set[int]] = {name: set() for name, _ in index.sets}
    for manifest in stage3.values():
        path = manifest["result"].get("removed_file")
        if not path:
            continue
        with output.fs.open(path, "rb") as handle:
            parquet = pq.ParquetFile(handle)
            if ITEMS not in parquet.schema_arrow.names:
                continue
            for rows in row_groups(parquet, columns=[DROP_REASON, ITEMS]):
                for items in rows[ITEMS].to_pylist():
                    for item in items or ():
                        found[index.set_of(item)].add(item)
    sizes = Counter(int(s) for s in index.item_set)
    sets = {name: {"spec": spec, "fingerprint": digest, "items": sizes[number],
                   "documents_removed": removed.get(f"{REASON}.{name}", 0), "items_found": len(found[name])}
            for number, ((name, digest), spec) in enumerate(zip(index.sets, index.specs))}
    return {"ngram_size": index.n, "max_documents": block.max_documents, "tokenizer": block.tokenizer.key,
            "index_entries": index.entries, "index_bytes": index.nbytes, "items_not_indexed": index.short_items,
            "sets": sets, "ignored": [{"text": t, "documents": c} for t, c in
                                      sorted(index.ignored.items(), key=lambda kv: (-kv[1], kv[0]))]}
