"""Helpers of the dedup tests: Finnish documents and planted near-duplicates, synthetic signatures with
known components, stage-1-like Parquet files, and reading a run's assignments back."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.blocks.keys import document_keys
from curate.blocks.minhash import MinhashSignature, normalise_tokens
from curate.dedup import ClusterResult
from curate.language_configs.minhash import DedupConfig

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
FINNISH = SHARED / "data" / "text" / "fi"
WORD = re.compile(r"\w+")


def finnish_sentences() -> list[list[str]]:
    """Every sentence of the shared Finnish text as `\\w+` tokens (sentences with at least 3 tokens)."""
    sentences = []
    for path in sorted(FINNISH.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            words = WORD.findall(line)
            if len(words) >= 3:
                sentences.append(words)
    return sentences


def consecutive_documents(sentences: list[list[str]], words: int = 200) -> list[list[str]]:
    """The text cut into non-overlapping documents of ≥ `words` tokens of consecutive sentences (~600)."""
    documents, current = [], []
    for sentence in sentences:
        current.extend(sentence)
        if len(current) >= words:
            documents.append(current)
            current = []
    return documents


def sampled_document(sentences: list[list[str]], rng: np.random.Generator, words: int = 200) -> list[str]:
    """~`words` tokens of consecutive sentences from a random starting point (two such documents may
    overlap: use `consecutive_documents` where documents must be unrelated)."""
    start = int(rng.integers(len(sentences)))
    document: list[str] = []
    i = start
    while len(document) < words:
        document.extend(sentences[i % len(sentences)])
        i += 1
    return document


_NORMALISED: dict[str, str] = {}


def normalised(words: list[str]) -> list[str]:
    """The non-empty normalised tokens (`blocks.minhash.normalise_tokens`, memoised per word)."""
    missing = [w for w in set(words) if w not in _NORMALISED]
    if missing:
        _NORMALISED.update(zip(missing, normalise_tokens(pa.array(missing, pa.string())).to_pylist()))
    return [t for t in (_NORMALISED[w] for w in words) if t]


def shingles(words: list[str], n: int = 5) -> set[tuple[str, ...]]:
    tokens = normalised(words)
    if len(tokens) < n:
        return {tuple(tokens)} if tokens else set()
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def jaccard(a: list[str], b: list[str], n: int = 5) -> float:
    sa, sb = shingles(a, n), shingles(b, n)
    return len(sa & sb) / len(sa | sb)


def variant(words: list[str], share: float, vocabulary: list[str], rng: np.random.Generator) -> list[str]:
    """`words` with round(share × len) tokens, at random positions, replaced by random vocabulary words."""
    out = list(words)
    count = int(round(share * len(words)))
    for position in rng.choice(len(words), size=count, replace=False):
        out[position] = vocabulary[int(rng.integers(len(vocabulary)))]
    return out


def share_for(target_jaccard: float, n: int = 5) -> float:
    """The replaced share that gives about `target_jaccard` (a shingle survives with probability (1 − q)^n)."""
    survive = 2 * target_jaccard / (1 + target_jaccard)
    return 1 - survive ** (1 / n)


def signature_table(documents: list[list[str]], ids: list[str], config: DedupConfig, urls=None) -> pa.Table:
    """A stage-1-like table: id, doc_key, minhash_bands, text_hash (and url)."""
    columns = {"id": pa.array(ids), "words": pa.array(documents, pa.list_(pa.string()))}
    table = MinhashSignature(config)(pa.table(columns))
    table = table.append_column("doc_key", document_keys(table["id"])).drop_columns(["words"])
    if urls is not None:
        table = table.append_column("url", pa.array(urls, pa.string()))
    return table


def write_files(table: pa.Table, directory: Path, files: int, row_group_size: int | None = None) -> list[str]:
    """`table` cut into `files` Parquet files (contiguous slices)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    bounds = np.linspace(0, table.num_rows, files + 1).astype(int)
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        path = directory / f"part-{i:03d}.parquet"
        pq.write_table(table.slice(lo, hi - lo), path, row_group_size=row_group_size)
        paths.append(str(path))
    return paths


def planted_signatures(
    documents: int, bands: int = 14, clustered_share: float = 0.2, max_size: int = 10, seed: int = 0
) -> tuple[pa.Table, dict[int, tuple[int, int]]]:
    """Random band hashes with planted clusters: each member shares 1–3 random bands with the previous one
    (chains, so components need several rounds). Returns the table and {doc_key: (cluster id, size)} for
    every document in a cluster of ≥ 2, computed by union–find over the actual equal band hashes."""
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 2**64 - 1, documents, dtype=np.uint64, endpoint=True)
    values = rng.integers(0, 2**64 - 1, (documents, bands), dtype=np.uint64, endpoint=True)
    i = 0
    while i < documents * clustered_share:
        size = int(rng.integers(2, max_size + 1))
        for j in range(1, min(size, documents - i)):
            shared = rng.choice(bands, size=int(rng.integers(1, 4)), replace=False)
            values[i + j, shared] = values[i + j - 1, shared]
        i += size
    order = rng.permutation(documents)  # clusters are not contiguous in the files
    keys, values = keys[order], values[order]
    table = pa.table(
        {
            "doc_key": pa.array(keys, pa.uint64()),
            "minhash_bands": pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), pa.uint64()), bands),
        }
    )
    return table, reference_clusters(keys, values)


def reference_clusters(keys: np.ndarray, values: np.ndarray) -> dict[int, tuple[int, int]]:
    """{doc_key: (min doc_key of its component, component size)} for components of ≥ 2 (in-memory union–find)."""
    parent = list(range(len(keys)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for band in range(values.shape[1]):
        order = np.argsort(values[:, band], kind="stable")
        column = values[order, band]
        for s in np.flatnonzero(column[1:] == column[:-1]).tolist():
            a, b = find(int(order[s])), find(int(order[s + 1]))
            if a != b:
                parent[a] = b
    members: dict[int, list[int]] = {}
    for i in range(len(keys)):
        members.setdefault(find(i), []).append(i)
    expected = {}
    for group in members.values():
        if len(group) > 1:
            cluster = int(min(int(keys[i]) for i in group))
            for i in group:
                expected[int(keys[i])] = (cluster, len(group))
    return expected


def assignments(result: ClusterResult, method: str = "minhash") -> pa.Table:
    """Every bucket's assignment table of one method, concatenated (bucket order)."""
    return pa.concat_tables([result.load(b)[method] for b in range(result.num_buckets)])


def as_dict(table: pa.Table, method: str = "minhash") -> dict[int, tuple[int, int]]:
    keys = table["doc_key"].to_pylist()
    clusters = table[f"{method}_cluster_id"].to_pylist()
    sizes = table[f"{method}_cluster_size"].to_pylist()
    return {k: (c, s) for k, c, s in zip(keys, clusters, sizes)}
