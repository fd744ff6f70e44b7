"""Decontamination: documents that contain an evaluation set's items are removed (`decontamination.<set>`).

Matching (docs/decontamination.md): the text is normalised (NFKC, case folded, every punctuation, symbol and
control character a space, whitespace runs one space; line breaks kept as paragraph bounds) and cut into the
language's word tokens (`blocks.words`: each whitespace-separated word goes through the configured tokenizer, once
per process: a cache, exact because spaCy and `unicode_words` never join across whitespace; scripts without spaces
give the tokenizer whole lines). A document is contaminated by an item when it shares one word n-gram (default 13,
across line breaks) with it, or, for items of fewer than n words (and at least `min_item_words`), when one of its
paragraphs (lines) is the item. Within-document repeats do not matter.

The index: each token is a 64-bit hash (blake2b), a run of tokens the polynomial Σ h[k]·M^(L-1-k) mod 2^64, so
every window of a document comes from one prefix sum (`_windows`); n-gram and paragraph hashes sit in sorted
`uint64` arrays with the (first) item of each, 12 bytes an entry: an MMLU-sized set (15,000 items of ~100 words,
~1.3 M 13-grams) takes ~16 MB plus its text. Entries a whole language shares with more than K documents
(`max_documents`) are common text, not contamination: `count_entries` counts them in a pass before stage 3, and
`NgramIndex.without` takes them out.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from itertools import chain

import numpy as np
import pyarrow as pa

from curate.blocks.base import Block, mark_dropped, set_column
from curate.blocks.evaluation_sets import EvalSet
from curate.blocks.words import FAST_TOKENIZER, UNSPACED_SCRIPTS, load_tokenizer

REASON = "decontamination"
ITEM, MATCH, ITEMS = "decontamination_item", "decontamination_match", "decontamination_items"
COLUMNS = (ITEM, MATCH, ITEMS)  # kept in the removed rows; never released
NGRAM_SIZE = 13
MAX_DOCUMENTS = 1000
MIN_ITEM_WORDS = 3
_M = 0x9E3779B97F4A7C15  # odd, so invertible mod 2^64
_M_INV = pow(_M, -1, 1 << 64)
_U64 = np.uint64
_CACHE_LIMIT = 2_000_000  # words a process remembers per tokenizer before starting over
_CHUNK_TOKENS = 1 << 20  # tokens hashed at once (a few arrays of 8 bytes each)


class _Separators(dict):
    """`str.translate` table: a letter, mark, number or line break stays, any other character becomes a space;
    filled as characters are met (one `unicodedata.category` call per distinct character and process)."""

    def __missing__(self, code: int) -> int:
        value = code if code == 10 or unicodedata.category(chr(code))[0] in "LMN" else 32
        self[code] = value
        return value


_SEPARATORS = _Separators()


def _folded(text: str) -> str:
    """NFKC, case folded, every separator a space (runs not collapsed: `str.split` does that)."""
    return unicodedata.normalize("NFKC", text).casefold().translate(_SEPARATORS)


def _token_hash(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class Tokens:
    """A document as tokens: their hashes, and how many tokens each line (paragraph) has."""

    hashes: np.ndarray
    line_lengths: np.ndarray


@dataclass(frozen=True)
class Tokenizer:
    """The language's word tokenizer (`blocks.words` key) over normalised text; `spaced`: words never span a space
    (then each distinct word is tokenized once per process)."""

    key: str
    spaced: bool = True

    @classmethod
    def for_language(cls, key: str, script: str) -> Tokenizer:
        return cls(key, key == FAST_TOKENIZER or script not in UNSPACED_SCRIPTS)

    def _split(self, words: list[str]) -> list[tuple[str, ...]]:
        """The tokens of each whitespace-free word: itself when spaCy's rules cannot split it, else the tokenizer's."""
        plain = _plain_word(self.key)
        tokens: dict[str, tuple[str, ...]] = {w: (w,) for w in words if plain is not None and plain(w)}
        rest = [w for w in words if w not in tokens]
        for word, parts in zip(rest, load_tokenizer(self.key)(rest) if rest else ()):
            tokens[word] = tuple(t for t in (p.strip() for p in parts) if t)
        return [tokens[w] for w in words]

    def lines(self, text: str) -> list[list[str]]:
        """The token strings of each line of `text` (for reports: not cached)."""
        if not self.spaced:
            tokenize = load_tokenizer(self.key)
            return [[t for t in (s.strip() for s in tokenize([line])[0]) if t] if line.strip() else []
                    for line in _folded(text).split("\n")]
        lines = [line.split() for line in _folded(text).split("\n")]
        words = sorted({w for line in lines for w in line})
        tokens = dict(zip(words, self._split(words)))
        return [[t for w in line for t in tokens[w]] for line in lines]

    def hash_many(self, texts: list[str]) -> list[Tokens]:
        """Each text's token hashes and tokens per line; each distinct word is tokenized and hashed once per process
        (spaced scripts)."""
        if not self.spaced:
            return [_tokens([[_token_hash(t) for t in line] for line in self.lines(text)]) for text in texts]
        docs = [[line.split() for line in _folded(text).split("\n")] for text in texts]
        hashed = _hash_cache(self.key)
        seen: set[str] = set()
        for lines in docs:
            for words in lines:
                seen.update(words)
        missing = sorted(seen.difference(hashed))
        if missing:
            if len(hashed) + len(missing) > _CACHE_LIMIT:
                hashed.clear()
            for word, tokens in zip(missing, self._split(missing)):
                hashed[word] = tuple(map(_token_hash, tokens))
        out = []
        for lines in docs:
            parts = list(map(hashed.__getitem__, chain.from_iterable(lines)))
            counts = np.zeros(len(parts) + 1, np.int64)
            counts[1:] = np.fromiter(map(len, parts), np.int64, len(parts))
            ends = np.cumsum(np.fromiter(map(len, lines), np.int64, len(lines)))
            tokens_before = np.cumsum(counts)
            line_lengths = np.diff(tokens_before[ends], prepend=0)
            out.append(Tokens(np.fromiter(chain.from_iterable(parts), _U64, int(tokens_before[-1])), line_lengths))
        return out


def _tokens(lines: list[list[int]]) -> Tokens:
    return Tokens(np.array([h for line in lines for h in line], _U64), np.array([len(x) for x in lines], np.int64))


@cache
def _plain_word(key: str) -> Callable[[str], bool] | None:
    """For a spaCy tokenizer: whether a word is one token by spaCy's own rules (no special case; no prefix, suffix
    or infix pattern matches it: then spaCy's tokenizer cannot split it), which spares the Doc and the lexeme spaCy
    would make (~0.4 ms a new word, measured). Words it cannot vouch for go through the tokenizer. None for other
    tokenizers."""
    if key == FAST_TOKENIZER:
        return None
    from datatrove.utils.word_tokenizers import SpaCyTokenizer, load_word_tokenizer

    load_tokenizer(key)  # the checks words.py makes (packages, models) before datatrove's tokenizer is used
    tokenizer = load_word_tokenizer(key)
    if not isinstance(tokenizer, SpaCyTokenizer) or tokenizer.language == "ja":
        return None
    spacy_tokenizer = tokenizer.tokenizer.tokenizer
    specials = frozenset(spacy_tokenizer.rules or {})
    prefix, suffix, infix = spacy_tokenizer.prefix_search, spacy_tokenizer.suffix_search, spacy_tokenizer.infix_finditer

    def plain(word: str) -> bool:
        return (word not in specials and not (prefix and prefix(word)) and not (suffix and suffix(word))
                and not (infix and next(iter(infix(word)), None)))

    return plain


@cache
def _hash_cache(key: str) -> dict[str, tuple[int, ...]]:
    """word → its tokens' hashes, per tokenizer and process (cleared past `_CACHE_LIMIT` words)."""
    return {}


_POWERS: list[np.ndarray] = [np.ones(1, _U64), np.ones(1, _U64)]


def _powers(length: int) -> tuple[np.ndarray, np.ndarray]:
    """(M^i, M^-i) for i < length (mod 2^64), grown on demand."""
    if len(_POWERS[0]) < length:
        size = max(length, 2 * len(_POWERS[0]))
        for slot, base in ((0, _M), (1, _M_INV)):
            values = np.full(size, base, _U64)
            values[0] = 1
            _POWERS[slot] = np.cumprod(values, dtype=_U64)
    return _POWERS[0][:length], _POWERS[1][:length]


def _windows(hashes: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Σ h[s+k]·M^(L-1-k) for each window (s, L) of `hashes`, from one prefix sum (mod 2^64)."""
    forward, inverse = _powers(len(hashes) + 1)
    prefix = np.zeros(len(hashes) + 1, _U64)
    np.cumsum(hashes * inverse[:len(hashes)], out=prefix[1:])
    ends = starts + lengths
    return forward[ends - 1] * (prefix[ends] - prefix[starts])


def sequence_hash(hashes: np.ndarray) -> int:
    """The hash of a whole token sequence (what `_windows` gives for a window of the same tokens)."""
    return int(_windows(hashes, np.zeros(1, np.int64), np.array([len(hashes)]))[0]) if len(hashes) else 0


def _lookup(table: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The position of each value in the sorted `table`, -1 where absent."""
    if not len(table) or not len(values):
        return np.full(len(values), -1, np.int64)
    position = np.minimum(np.searchsorted(table, values), len(table) - 1)
    return np.where(table[position] == values, position, -1)


@dataclass
class NgramIndex:
    """The n-gram and paragraph hashes of a run's evaluation sets, sorted, with the first item of each entry.

    Entry ids: n-gram entries 0..len(ngrams)-1, then paragraph entries."""

    n: int
    sets: tuple[tuple[str, str], ...]  # (name, content fingerprint)
    specs: tuple[str, ...]  # where each set came from (not part of the digest: a moved file is the same set)
    items: tuple[str, ...]
    item_set: np.ndarray  # uint16: the set of each item
    ngrams: np.ndarray  # uint64, sorted
    ngram_items: np.ndarray  # uint32
    paragraphs: np.ndarray  # uint64, sorted
    paragraph_items: np.ndarray  # uint32
    short_items: int = 0  # items under min_item_words: not indexed
    ignored: dict[str, int] = field(default_factory=dict)  # common entries taken out: text → documents

    @classmethod
    def build(cls, sets: list[EvalSet], tokenizer: Tokenizer, n: int = NGRAM_SIZE,
              min_item_words: int = MIN_ITEM_WORDS) -> NgramIndex:
        items = [item for s in sets for item in s.items]
        item_set = np.repeat(np.arange(len(sets), dtype=np.uint16), [len(s.items) for s in sets])
        grams, gram_items, paragraphs, paragraph_items, short = [], [], [], [], 0
        for number, tokens in enumerate(tokenizer.hash_many(items)):
            length = len(tokens.hashes)
            if length >= n:
                starts = np.arange(length - n + 1)
                grams.append(_windows(tokens.hashes, starts, np.full(len(starts), n)))
                gram_items.append(np.full(len(starts), number, np.uint32))
            elif length >= min_item_words:
                paragraphs.append(np.array([sequence_hash(tokens.hashes)], _U64))
                paragraph_items.append(np.array([number], np.uint32))
            else:
                short += 1
        ngrams, ngram_items = _sorted_unique(grams, gram_items)
        paras, para_items = _sorted_unique(paragraphs, paragraph_items)
        return cls(n, tuple((s.name, s.fingerprint) for s in sets), tuple(s.spec for s in sets), tuple(items),
                   item_set, ngrams, ngram_items, paras, para_items, short)

    @property
    def entries(self) -> int:
        return len(self.ngrams) + len(self.paragraphs)

    @property
    def nbytes(self) -> int:
        """Memory of the index: its arrays and its items' text."""
        arrays = (self.item_set, self.ngrams, self.ngram_items, self.paragraphs, self.paragraph_items)
        return sum(a.nbytes for a in arrays) + sum(len(i.encode("utf-8")) + 49 for i in self.items)

    def set_of(self, item: int) -> str:
        return self.sets[int(self.item_set[item])][0]

    def digest(self) -> str:
        """What the index decides by: n, the sets' content fingerprints, and the entries taken out."""
        return hashlib.sha256(repr((self.n, self.sets, len(self.ngrams), len(self.paragraphs),
                                    sorted(self.ignored))).encode()).hexdigest()[:16]

    def entry_item(self, entry: int) -> int:
        if entry < len(self.ngrams):
            return int(self.ngram_items[entry])
        return int(self.paragraph_items[entry - len(self.ngrams)])

    def match_entries(self, tokens: list[Tokens]) -> list[np.ndarray]:
        """The entries each document contains (sorted, each once), in document order."""
        found: list[np.ndarray] = []
        batch: list[Tokens] = []
        size = 0
        for doc in tokens:
            batch.append(doc)
            size += len(doc.hashes)
            if size >= _CHUNK_TOKENS:
                found += self._match_chunk(batch)
                batch, size = [], 0
        return found + self._match_chunk(batch) if batch else found

    def _match_chunk(self, docs: list[Tokens]) -> list[np.ndarray]:
        lengths = np.array([len(d.hashes) for d in docs], np.int64)
        hashes = np.concatenate([d.hashes for d in docs]) if len(docs) else np.empty(0, _U64)
        doc_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        hits_doc, hits_entry = [], []
        if len(self.ngrams) and len(hashes) >= self.n:
            starts = np.arange(len(hashes) - self.n + 1)
            owner = np.repeat(np.arange(len(docs)), lengths)[:len(starts)]
            inside = starts + self.n <= doc_starts[owner] + lengths[owner]
            starts = starts[inside]
            position = _lookup(self.ngrams, _windows(hashes, starts, np.full(len(starts), self.n)))
            hit = position >= 0
            hits_doc.append(owner[inside][hit])
            hits_entry.append(position[hit])
        if len(self.paragraphs):
            line_lengths = np.concatenate([d.line_lengths for d in docs]) if docs else np.empty(0, np.int64)
            line_docs = np.repeat(np.arange(len(docs)), [len(d.line_lengths) for d in docs])
            line_starts = np.concatenate([doc_starts[i] + np.concatenate([[0], np.cumsum(d.line_lengths)[:-1]])
                                          for i, d in enumerate(docs) if len(d.line_lengths)] or [np.empty(0)])
            short = (line_lengths > 0) & (line_lengths < self.n)
            if short.any():
                values = _windows(hashes, line_starts[short].astype(np.int64), line_lengths[short])
                position = _lookup(self.paragraphs, values)
                hit = position >= 0
                hits_doc.append(line_docs[short][hit])
                hits_entry.append(position[hit] + len(self.ngrams))
        doc_ids = np.concatenate(hits_doc) if hits_doc else np.empty(0, np.int64)
        entries = np.concatenate(hits_entry) if hits_entry else np.empty(0, np.int64)
        empty = np.empty(0, np.int64)
        if not len(doc_ids):
            return [empty] * len(docs)
        order = np.lexsort((entries, doc_ids))
        doc_ids, entries = doc_ids[order], entries[order]
        cuts = np.searchsorted(doc_ids, np.arange(len(docs) + 1))
        return [np.unique(entries[cuts[i]:cuts[i + 1]]) if cuts[i + 1] > cuts[i] else empty
                for i in range(len(docs))]

    def without(self, entries: np.ndarray, texts: dict[str, int]) -> NgramIndex:
        """This index without `entries` (common text), recording them as `texts` (entry text → documents)."""
        entries = np.asarray(entries, np.int64)
        keep_grams = np.ones(len(self.ngrams), bool)
        keep_grams[entries[entries < len(self.ngrams)]] = False
        keep_paras = np.ones(len(self.paragraphs), bool)
        keep_paras[entries[entries >= len(self.ngrams)] - len(self.ngrams)] = False
        return NgramIndex(self.n, self.sets, self.specs, self.items, self.item_set, self.ngrams[keep_grams],
                          self.ngram_items[keep_grams], self.paragraphs[keep_paras],
                          self.paragraph_items[keep_paras], self.short_items, {**self.ignored, **texts})

    def entry_text(self, entry: int, tokenizer: Tokenizer) -> str:
        """The words of an entry (the n-gram, or the whole item), from its item."""
        item = self.entry_item(entry)
        tokens = [t for line in tokenizer.lines(self.items[item]) for t in line]
        if entry >= len(self.ngrams):
            return " ".join(tokens)
        hashes = tokenizer.hash_many([self.items[item]])[0].hashes
        starts = np.arange(max(len(hashes) - self.n + 1, 0))
        values = _windows(hashes, starts, np.full(len(starts), self.n))
        at = np.flatnonzero(values == self.ngrams[entry])
        return " ".join(tokens[int(at[0]):int(at[0]) + self.n]) if len(at) else ""


def _sorted_unique(values: list[np.ndarray], items: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct hashes, each with its lowest item."""
    if not values:
        return np.empty(0, _U64), np.empty(0, np.uint32)
    hashes, owners = np.concatenate(values), np.concatenate(items)
    order = np.lexsort((owners, hashes))
    hashes, owners = hashes[order], owners[order]
    first = np.concatenate([[True], hashes[1:] != hashes[:-1]])
    return hashes[first], owners[first]


def count_entries(index: NgramIndex, tokenizer: Tokenizer, texts: list[str]) -> dict[int, int]:
    """{entry: documents of `texts` that contain it} (each document counted once per entry)."""
    found = index.match_entries(tokenizer.hash_many(texts))
    hit = [f for f in found if len(f)]
    if not hit:
        return {}
    entries, counts = np.unique(np.concatenate(hit), return_counts=True)
    return {int(e): int(c) for e, c in zip(entries, counts)}


@dataclass
class Decontaminate(Block):
    """Stage 3: drop documents sharing an n-gram (or a whole paragraph) with an evaluation set's item, as
    `decontamination.<set>`, recording the item, the matched words and every item the document contains."""

    index: NgramIndex
    tokenizer: Tokenizer
    max_documents: int = MAX_DOCUMENTS
    name = REASON
    reads = ("text",)
    writes = ("drop_reason", *COLUMNS)

    def __repr__(self) -> str:  # what stage 3's fingerprint covers: the sets by content, not the arrays
        return (f"Decontaminate(sets={list(self.index.sets)}, n={self.index.n}, tokenizer={self.tokenizer.key}, "
                f"max_documents={self.max_documents}, index={self.index.digest()})")

    def fingerprint(self) -> object:
        return repr(self)

    def apply(self, batch: pa.Table) -> pa.Table:
        texts = [t or "" for t in batch["text"].to_pylist()]
        found = self.index.match_entries(self.tokenizer.hash_many(texts))
        items: list[list[int] | None] = [None] * len(texts)
        item_text: list[str | None] = [None] * len(texts)
        matched: list[str | None] = [None] * len(texts)
        reasons: dict[str, np.ndarray] = {}
        for row, entries in enumerate(found):
            if not len(entries):
                continue
            owners = sorted({self.index.entry_item(int(e)) for e in entries})
            first = int(entries[0])
            item = self.index.entry_item(first)
            items[row], item_text[row] = owners, self.index.items[item]
            matched[row] = self.index.entry_text(first, self.tokenizer)
            reasons.setdefault(self.index.set_of(item), np.zeros(len(texts), bool))[row] = True
        for name, mask in reasons.items():
            batch = mark_dropped(batch, mask, f"{REASON}.{name}")
        batch = set_column(batch, ITEM, pa.array(item_text, pa.string()))
        batch = set_column(batch, MATCH, pa.array(matched, pa.string()))
        return set_column(batch, ITEMS, pa.array(items, pa.list_(pa.int32())))


def decontamination_block(sets: list[EvalSet], tokenizer_key: str, script: str, n: int = NGRAM_SIZE,
                          max_documents: int = MAX_DOCUMENTS, min_item_words: int = MIN_ITEM_WORDS) -> Decontaminate:
    """The stage-3 block for `sets` in one language: its index built once, here, on the driver."""
    tokenizer = Tokenizer.for_language(tokenizer_key, script)
    return Decontaminate(NgramIndex.build(sets, tokenizer, n, min_item_words), tokenizer, max_documents)
