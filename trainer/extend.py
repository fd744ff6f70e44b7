"""Extending a checkpoint's byte-level BPE tokenizer with a new language's tokens.

    from curate.trainer.extend import extend_tokenizer
    report = extend_tokenizer("HuggingFaceTB/SmolLM2-135M", "out/fin_Latn", "runs/tok-fin", add=8000,
                              keep_unchanged=["eng.txt"])

What is kept: the base tokenizer's vocabulary (every token keeps its id), its merges in their order,
its special and added tokens, normalizer, pre-tokenizer and decoder. What is added: up to `add` tokens,
with ids after every existing one, and one merge each, ranked after every old merge.

Why no text gets more tokens: BPE applies, inside each pre-token, the applicable merge of lowest rank
first. The old merges all rank first, so every word first reaches its base segmentation; the new merges
can then only join tokens, and every merge removes one token.

How the merges are learned: BPE training continued from the base segmentation. The sample's words
(the base pre-tokenizer's pieces, counted with each document's rehydration `weight`) start as their
base tokens; the most frequent adjacent pair is merged, again and again (ties: the pair that sorts
first), until `add` new tokens exist or no pair occurs `min_frequency` times.

Replay languages (`keep_unchanged` texts): a merge whose pair occurs in the base segmentation of a
word of the replay sample is never added (nor a token that spells a whole replay word, for
tokenizers that look words up whole): none of the new merges can fire on the sample, so it
tokenizes exactly as before. Other text of those languages still changes where it has the new
pairs; the report measures how much on held-out lines of each replay file.
"""

from __future__ import annotations

import heapq
import json
import math
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from curate.trainer.data import DataError, iter_texts, resolve_parquet_files
from curate.trainer.tokenizer import TokenizerError

REPORT = "extension.json"
"""The report written next to the extended tokenizer (also its provenance, read by `curate train`)."""


@dataclass
class Fertility:
    """Tokenization of one held-out text: documents, words (whitespace-separated), bytes, tokens."""

    documents: int
    words: int
    bytes: int
    tokens: int

    @property
    def tokens_per_word(self) -> float:
        return self.tokens / max(1, self.words)

    @property
    def bytes_per_token(self) -> float:
        return self.bytes / max(1, self.tokens)


@dataclass
class ExtensionReport:
    """What `extend_tokenizer` did (written as `extension.json` next to the tokenizer)."""

    base: str
    base_vocab_size: int
    vocab_size: int
    added_tokens: list[str]
    """New tokens in id order (byte-level strings, as in the vocabulary); ids from `first_new_id` on."""
    first_new_id: int
    new_merges: int
    sample: dict[str, Any]
    """Training sample: sources, documents, weighted documents, words, seed."""
    skipped_for_replay: int = 0
    """Merges left out because they would change the replay sample's tokenization."""
    fertility: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    """Held-out text name -> before / after -> tokens_per_word, bytes_per_token, tokens, words, bytes."""
    replay_changed: dict[str, dict[str, float]] = field(default_factory=dict)
    """Replay file -> share of its sample and of its held-out lines whose tokens changed."""

    def table(self) -> str:
        """Fertility before and after, one line per held-out text (Markdown)."""
        lines = ["| held-out text | tokens/word before | after | bytes/token before | after | tokens |",
                 "|---|---:|---:|---:|---:|---:|"]
        for name, both in self.fertility.items():
            before, after = both["before"], both["after"]
            lines.append(f"| {name} | {before['tokens_per_word']:.3f} | {after['tokens_per_word']:.3f} | "
                         f"{before['bytes_per_token']:.3f} | {after['bytes_per_token']:.3f} | "
                         f"{after['tokens'] / max(1, before['tokens']) - 1:+.1%} |")
        return "\n".join(lines)


def extend_tokenizer(base: str, sources: Sequence[str | Path], out_dir: str | Path, *, add: int,
                     keep_unchanged: Sequence[str | Path] = (), max_documents: int = 50_000,
                     heldout_documents: int = 1_000, heldout_texts: dict[str, str | Path] | None = None,
                     min_frequency: int = 2, seed: int = 0, text_column: str = "text",
                     weight_column: str = "weight") -> ExtensionReport:
    """Extend `base` with up to `add` tokens learned on `sources` (Parquet shards or text files) and
    save the tokenizer and `extension.json` to `out_dir`. See the module docstring."""
    if add < 1:
        raise TokenizerError("--add must be at least 1")
    hf = load_base(base)
    data = json.loads(hf.backend_tokenizer.to_str())
    check_byte_level_bpe(data, base)
    backend = hf.backend_tokenizer
    train_docs, heldout = sample_documents(sources, max_documents, heldout_documents, seed,
                                           text_column, weight_column)
    if not train_docs:
        raise DataError(f"no documents in {', '.join(map(str, sources))}")
    words = count_words(backend, train_docs)
    replay_files = [Path(p) for p in keep_unchanged]
    replay_samples, replay_heldout = {}, {}
    for path in replay_files:
        lines = list(iter_texts([path], text_column))
        replay_samples[path.name], replay_heldout[path.name] = split_lines(lines, seed)
    forbidden_pairs, forbidden_tokens = replay_constraints(backend, [t for s in replay_samples.values() for t in s],
                                                           ignore_merges=bool(data["model"].get("ignore_merges")))
    vocab: dict[str, int] = data["model"]["vocab"]
    merges = learn_merges(words, backend, set(vocab), add, min_frequency, forbidden_pairs, forbidden_tokens)
    first_new_id = len(hf)  # after the BPE vocabulary and every added (special) token
    added = [a + b for (a, b), new in merges if new]
    for offset, token in enumerate(added):
        vocab[token] = first_new_id + offset
    old_merges = data["model"]["merges"]
    as_strings = bool(old_merges) and isinstance(old_merges[0], str)
    old_merges.extend(f"{a} {b}" if as_strings else [a, b] for (a, b), _ in merges)
    extended = save_extended(hf, data, out_dir)

    report = ExtensionReport(
        base=base, base_vocab_size=len(hf), vocab_size=len(extended), added_tokens=added,
        first_new_id=first_new_id, new_merges=len(merges),
        sample=dict(sources=[str(s) for s in sources], documents=len(train_docs),
                    weighted_documents=int(sum(w for _, w in train_docs)), distinct_words=len(words),
                    seed=seed, min_frequency=min_frequency, keep_unchanged=[str(p) for p in replay_files]),
        skipped_for_replay=merges.skipped)
    named = {"language (held-out shards)": heldout, **{f"{name} (held-out)": lines
                                                       for name, lines in replay_heldout.items()}}
    for name, path in (heldout_texts or {}).items():
        named[name] = list(iter_texts([path], text_column))
    for name, texts in named.items():
        if texts:
            report.fertility[name] = {"before": _fertility_dict(fertility(hf, texts)),
                                      "after": _fertility_dict(fertility(extended, texts))}
    for name in replay_samples:
        report.replay_changed[name] = dict(
            sample=changed_share(hf, extended, replay_samples[name]),
            heldout=changed_share(hf, extended, replay_heldout[name]))
    (Path(out_dir) / REPORT).write_text(json.dumps(asdict(report), indent=1, ensure_ascii=False))
    return report


# --- the base tokenizer -------------------------------------------------------------------------------
def load_base(base: str) -> Any:
    """The base as a fast HF tokenizer: a folder, a `tokenizer.json`, or a Hub id already in the
    local cache (nothing is downloaded)."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    path = Path(base).expanduser()
    try:
        if path.is_file():
            return PreTrainedTokenizerFast(tokenizer_file=str(path))
        if path.is_dir():
            tokenizer = AutoTokenizer.from_pretrained(str(path))
        else:
            tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    except (OSError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TokenizerError(f"cannot load base tokenizer {base!r} (a folder, a tokenizer.json, or a Hub id "
                             f"in the local cache): {first_line}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise TokenizerError(f"{base!r} has no tokenizer.json (a slow {type(tokenizer).__name__}): only "
                             "tokenizers in the `tokenizers` JSON format can be extended")
    return tokenizer


def check_byte_level_bpe(data: dict[str, Any], base: str) -> None:
    """Raise `TokenizerError` (naming the kind) unless `data` is a byte-level BPE tokenizer."""
    model = data.get("model") or {}
    kind = model.get("type", "unknown")
    if kind != "BPE":
        raise TokenizerError(f"{base!r} is a {kind} tokenizer: extend-tokenizer extends byte-level BPE "
                             "tokenizers (GPT-2, Llama 3, Qwen, SmolLM) only")
    if not _has_byte_level(data.get("pre_tokenizer")):
        fallback = " with byte fallback (SentencePiece-style)" if model.get("byte_fallback") else ""
        raise TokenizerError(f"{base!r} is a BPE tokenizer{fallback} without byte-level pre-tokenization: "
                             "extend-tokenizer extends byte-level BPE tokenizers only")


def _has_byte_level(node: dict[str, Any] | None) -> bool:
    if not node:
        return False
    if node.get("type") == "ByteLevel":
        return True
    return any(_has_byte_level(child) for child in node.get("pretokenizers", []))


# --- the sample ----------------------------------------------------------------------------------------
def sample_documents(sources: Sequence[str | Path], max_documents: int, heldout_documents: int, seed: int,
                     text_column: str = "text", weight_column: str = "weight"
                     ) -> tuple[list[tuple[str, int]], list[str]]:
    """A seeded sample of `(text, weight)` from Parquet shards or text files (weight 1), and held-out
    documents that are not in it. Row groups (or files) are read in a seeded order; in each, rows in a
    seeded order; every `k`-th document (`k` from the held-out share) goes to the held-out set."""
    units = []
    for source in sources:
        path = Path(source)
        if path.suffix == ".txt" or (path.is_dir() and not any(path.rglob("*.parquet"))):
            units.extend(("text", f, 0) for f in (sorted(path.rglob("*.txt")) if path.is_dir() else [path]))
            continue
        import pyarrow.parquet as pq

        for f in resolve_parquet_files(path):
            units.extend(("parquet", f, i) for i in range(pq.ParquetFile(f).num_row_groups))
    rng = np.random.default_rng([seed, zlib.crc32(b"extend-tokenizer")])
    every = max(2, round((max_documents + heldout_documents) / max(1, heldout_documents)))
    sample: list[tuple[str, int]] = []
    heldout: list[str] = []
    seen = 0
    for unit in rng.permutation(len(units)):
        kind, path, group = units[unit]
        texts, weights = _read_unit(kind, path, group, text_column, weight_column)
        for row in rng.permutation(len(texts)):
            text, weight = texts[row], weights[row]
            if not text or weight < 1:
                continue
            seen += 1
            if seen % every == 0 and len(heldout) < heldout_documents:
                heldout.append(text)
            elif len(sample) < max_documents:
                sample.append((text, int(weight)))
        if len(sample) >= max_documents and len(heldout) >= heldout_documents:
            break
    return sample, heldout


def _read_unit(kind: str, path: Path, group: int, text_column: str, weight_column: str
               ) -> tuple[list[str], list[int]]:
    if kind == "text":
        texts = [line.rstrip("\n") for line in path.open(encoding="utf-8") if line.strip()]
        return texts, [1] * len(texts)
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    names = file.schema_arrow.names
    if text_column not in names:
        raise DataError(f"{path} has no {text_column!r} column")
    columns = [text_column] + ([weight_column] if weight_column in names else [])
    table = file.read_row_group(group, columns=columns)
    texts = table.column(0).to_pylist()
    weights = table.column(1).to_pylist() if len(columns) == 2 else [1] * len(texts)
    return texts, [int(w or 0) for w in weights]


def split_lines(lines: list[str], seed: int, heldout_share: float = 0.2) -> tuple[list[str], list[str]]:
    """A replay file's lines: the sample the merges must not change, and held-out lines (a seeded
    `heldout_share`) on which the report measures how much still changed."""
    order = np.random.default_rng([seed, zlib.crc32(b"replay")]).permutation(len(lines))
    cut = len(lines) - math.ceil(heldout_share * len(lines)) if len(lines) > 1 else len(lines)
    return [lines[i] for i in sorted(order[:cut])], [lines[i] for i in sorted(order[cut:])]


# --- learning the merges -----------------------------------------------------------------------------
def _pieces(backend: Any, text: str) -> list[str]:
    """The base pre-tokenizer's pieces of `text` (after its normalizer)."""
    if backend.normalizer is not None:
        text = backend.normalizer.normalize_str(text)
    return [piece for piece, _ in backend.pre_tokenizer.pre_tokenize_str(text)]


def count_words(backend: Any, documents: Iterable[tuple[str, int]]) -> Counter[str]:
    """Pre-token frequencies of the sample, each document counted `weight` times."""
    counts: Counter[str] = Counter()
    for text, weight in documents:
        for piece, n in Counter(_pieces(backend, text)).items():
            counts[piece] += n * weight
    return counts


def base_segmentation(backend: Any, word: str) -> list[str]:
    return [token.value for token in backend.model.tokenize(word)]


def replay_constraints(backend: Any, texts: Iterable[str], *, ignore_merges: bool
                       ) -> tuple[set[tuple[str, str]], set[str]]:
    """Adjacent token pairs of the replay sample's base segmentation (merges that must not be added),
    and, for tokenizers that look whole words up first (`ignore_merges`), its words."""
    words = {piece for text in texts for piece in _pieces(backend, text)}
    pairs = set()
    for word in words:
        tokens = base_segmentation(backend, word)
        pairs.update(zip(tokens, tokens[1:]))
    return pairs, words if ignore_merges else set()


class MergeList(list):  # type: ignore[type-arg]
    """Learned merges as `((left, right), is_new_token)`, with the count of merges skipped for replay."""

    skipped: int = 0


def learn_merges(words: Counter[str], backend: Any, vocabulary: set[str], add: int, min_frequency: int,
                 forbidden_pairs: set[tuple[str, str]], forbidden_tokens: set[str]) -> MergeList:
    """Continue BPE training from the base segmentation of `words` until `add` new tokens exist."""
    segmentations = [base_segmentation(backend, word) for word in words]
    frequencies = list(words.values())
    pair_counts: Counter[tuple[str, str]] = Counter()
    where: defaultdict[tuple[str, str], set[int]] = defaultdict(set)
    for index, tokens in enumerate(segmentations):
        for pair in zip(tokens, tokens[1:]):
            pair_counts[pair] += frequencies[index]
            where[pair].add(index)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)
    merges, known, new_tokens = MergeList(), set(vocabulary), 0
    while heap and new_tokens < add:
        negative, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -negative:
            continue  # stale entry
        if -negative < min_frequency:
            break
        merged = pair[0] + pair[1]
        del pair_counts[pair]
        if pair in forbidden_pairs or merged in forbidden_tokens:
            merges.skipped += 1
            continue
        is_new = merged not in known
        merges.append((pair, is_new))
        known.add(merged)
        new_tokens += is_new
        changed: Counter[tuple[str, str]] = Counter()
        for index in where.pop(pair, ()):
            tokens, frequency = segmentations[index], frequencies[index]
            for old in zip(tokens, tokens[1:]):
                changed[old] -= frequency
            tokens = _apply_merge(tokens, pair, merged)
            segmentations[index] = tokens
            for new in zip(tokens, tokens[1:]):
                changed[new] += frequency
                where[new].add(index)
        for other, delta in changed.items():
            if other == pair or delta == 0:
                continue
            pair_counts[other] += delta
            if pair_counts[other] > 0:
                heapq.heappush(heap, (-pair_counts[other], other))
            else:
                del pair_counts[other]
    return merges


def _apply_merge(tokens: list[str], pair: tuple[str, str], merged: str) -> list[str]:
    out, i = [], 0
    while i < len(tokens):
        if i + 1 < len(tokens) and tokens[i] == pair[0] and tokens[i + 1] == pair[1]:
            out.append(merged)
            i += 2
        else:
            out.append(tokens[i])
            i += 1
    return out


def save_extended(hf: Any, data: dict[str, Any], out_dir: str | Path) -> Any:
    """Save the base HF tokenizer with the extended `tokenizer.json` to `out_dir`; return it reloaded."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(str(out), legacy_format=False)  # special tokens, chat template, ...
    Tokenizer.from_str(json.dumps(data)).save(str(out / "tokenizer.json"))
    return AutoTokenizer.from_pretrained(str(out))


# --- measurements ------------------------------------------------------------------------------------
def fertility(tokenizer: Any, texts: Sequence[str]) -> Fertility:
    """Tokens, words and bytes of `texts` under `tokenizer` (no special tokens)."""
    encodings = tokenizer.backend_tokenizer.encode_batch(list(texts), add_special_tokens=False)
    return Fertility(documents=len(texts), words=sum(len(t.split()) for t in texts),
                     bytes=sum(len(t.encode("utf-8")) for t in texts),
                     tokens=sum(len(e.ids) for e in encodings))


def _fertility_dict(value: Fertility) -> dict[str, float]:
    return dict(asdict(value), tokens_per_word=value.tokens_per_word, bytes_per_token=value.bytes_per_token)


def changed_share(before: Any, after: Any, texts: Sequence[str]) -> float:
    """Share of `texts` whose token ids differ between the two tokenizers."""
    if not texts:
        return 0.0
    old = before.backend_tokenizer.encode_batch(list(texts), add_special_tokens=False)
    new = after.backend_tokenizer.encode_batch(list(texts), add_special_tokens=False)
    return sum(a.ids != b.ids for a, b in zip(old, new)) / len(texts)


def read_report(tokenizer_dir: str | Path) -> dict[str, Any] | None:
    """The `extension.json` of an extended tokenizer folder (None for any other tokenizer)."""
    path = Path(tokenizer_dir) / REPORT
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
