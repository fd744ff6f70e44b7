"""MinHash signatures and exact-text hashes from the word tokens, vectorised over a batch.

Normalisation (applied to each word token; FineWeb2/datatrove's `simplify_text`, token by token):

1. lowercase;
2. Unicode NFD, then combining marks (category Mn) removed: accents stripped (`ä` → `a`, `é` → `e`);
3. punctuation, symbols, separators (whitespace) and control/format characters removed;
4. every run of decimal digits (any script) replaced by `0` (`2017` → `0`, `9-vuotias` → `0vuotias`).

A token left empty (a punctuation token) is dropped; the normalised text is the remaining tokens in order.

Signature: the shingles are the word `ngram_size`-grams of the normalised tokens (a document with fewer
tokens than `ngram_size` is one shingle of all its tokens; a document with no token has no signature:
`minhash_bands` is null). Each shingle is hashed once to 64 bits: every distinct token of the batch is hashed
(FNV-1a over its UTF-8 bytes, murmur3 finaliser; BLAKE2b for tokens over 64 bytes), and a shingle's hash
chains its tokens' hashes through the murmur3 finaliser. The `bands × rows_per_band` permutations are
`h_i(x) = a_i·x + b_i mod 2^64` (odd `a_i`; multiply–add, a universal family whose high bits rank the
shingles), applied to the flat shingle array of the whole batch in cache-sized chunks, with
`np.minimum.reduceat` taking each document's minimum. `a_i, b_i` come from BLAKE2b of (`seed`, i), so they
are the same on every machine and numpy version. Each band's `rows_per_band` minimums are chained into one
uint64 band hash: two documents share a band hash exactly when (up to 2^-64) they share all its rows.

Two documents' probability of sharing at least one band is 1 − (1 − J^r)^b for Jaccard similarity J of
their shingle sets (r = 8 rows, b = 14 bands: 0.92 at J = 0.8, 0.05 at J = 0.5).

`text_hash` is the BLAKE2b (8 bytes) of the document's token hashes in order: equal for documents whose
normalised texts are equal; null when the normalised text is empty (such documents are never exact
duplicates of each other).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.blocks.base import Block, set_column
from curate.language_configs.minhash import DedupConfig

WORDS = "words"
MINHASH_BANDS = "minhash_bands"
TEXT_HASH = "text_hash"
SCHEME = "curate-minhash-1"  # changes whenever the same words and config would give other values

_U64 = np.uint64
_LONG_TOKEN_BYTES = 64  # longer tokens are hashed with BLAKE2b (the numpy loop runs once per byte position)
_CHUNK_SHINGLES = 8192  # shingles per permutation chunk: a reused (112 × 8192) uint64 buffer (best of 256–65536)

# Normalisation as RE2 patterns (pyarrow.compute), applied to the batch's distinct tokens only.
_DROP_CHARS = r"[\p{Mn}\p{P}\p{S}\p{Z}\p{Cc}\p{Cf}]+"
_DIGITS = r"\p{Nd}+"


def fmix64(values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """murmur3's 64-bit finaliser (a bijection with full avalanche), elementwise (into `out` if given)."""
    h = np.array(values, dtype=_U64, copy=True) if out is None else out
    if out is not None and out is not values:
        np.copyto(h, values)
    h ^= h >> _U64(33)
    h *= _U64(0xFF51AFD7ED558CCD)
    h ^= h >> _U64(33)
    h *= _U64(0xC4CEB9FE1A85EC53)
    h ^= h >> _U64(33)
    return h


def _chain(state: np.ndarray, values: np.ndarray) -> np.ndarray:
    """One step of an order-sensitive 64-bit hash of a sequence: fmix64(state ^ value), in place on `state`."""
    state ^= values
    return fmix64(state, out=state)


def normalise_tokens(tokens: pa.Array) -> pa.Array:
    """The normalised form of each token (see the module docstring); empty for punctuation tokens."""
    tokens = pc.utf8_lower(tokens)
    tokens = pc.utf8_normalize(tokens, "NFD")
    tokens = pc.replace_substring_regex(tokens, _DROP_CHARS, "")
    return pc.replace_substring_regex(tokens, _DIGITS, "0")


def hash_strings(strings: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A stable 64-bit hash of each string's UTF-8 bytes (nulls hash like empty strings).

    FNV-1a, vectorised across strings one byte position at a time (strings sorted by length, so each step
    touches only those still running), then the murmur3 finaliser; strings longer than 64 bytes go through
    BLAKE2b instead so a pathological token does not cost one numpy pass per byte.
    """
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks() if strings.num_chunks else pa.array([], pa.string())
    strings = strings.cast(pa.large_string()).fill_null("")
    n = len(strings)
    if n == 0:
        return np.zeros(0, _U64)
    offsets = np.frombuffer(strings.buffers()[1], np.int64)[strings.offset : strings.offset + n + 1]
    data_buffer = strings.buffers()[2]
    data = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    result = np.empty(n, _U64)
    long = np.flatnonzero(lengths > _LONG_TOKEN_BYTES)
    for i in long.tolist():
        digest = hashlib.blake2b(data[offsets[i] : offsets[i + 1]].tobytes(), digest_size=8).digest()
        result[i] = int.from_bytes(digest, "little")
    short = np.flatnonzero(lengths <= _LONG_TOKEN_BYTES)
    order = short[np.argsort(-lengths[short], kind="stable")]
    starts = offsets[:-1][order]
    sorted_lengths = lengths[order]
    h = np.full(len(order), 0xCBF29CE484222325, _U64)
    prime = _U64(0x100000001B3)
    if len(order):
        running = np.searchsorted(-sorted_lengths, -np.arange(1, int(sorted_lengths[0]) + 1), side="right")
        for position, count in enumerate(running.tolist()):
            h[:count] ^= data[starts[:count] + position]
            h[:count] *= prime
    result[order] = fmix64(h ^ sorted_lengths.astype(_U64))
    return result


@dataclass(frozen=True)
class NormalisedTokens:
    """A batch's normalised tokens as 64-bit hashes: document i's are `hashes[offsets[i]:offsets[i+1]]`."""

    hashes: np.ndarray
    offsets: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def token_hashes(words: pa.Array | pa.ChunkedArray) -> NormalisedTokens:
    """Normalise and hash every token of a `list<string>` column (null lists count as empty)."""
    if isinstance(words, pa.ChunkedArray):
        words = words.combine_chunks() if words.num_chunks else pa.array([], pa.list_(pa.string()))
    n = len(words)
    lengths = pc.fill_null(pc.list_value_length(words), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.fill_null(pc.list_flatten(words).cast(pa.string()), "")
    if len(flat) == 0:
        return NormalisedTokens(np.zeros(0, _U64), np.zeros(n + 1, np.int64))
    encoded = pc.dictionary_encode(flat)
    distinct = normalise_tokens(encoded.dictionary)
    distinct_hashes = hash_strings(distinct)
    distinct_kept = pc.greater(pc.binary_length(distinct), 0).to_numpy(zero_copy_only=False)
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    kept = distinct_kept[indices]
    hashes = distinct_hashes[indices][kept]
    document = np.repeat(np.arange(n), lengths)[kept]
    counts = np.bincount(document, minlength=n)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return NormalisedTokens(hashes, offsets)


def shingle_hashes(tokens: NormalisedTokens, ngram_size: int) -> NormalisedTokens:
    """One 64-bit hash per word `ngram_size`-gram (documents shorter than that: one shingle of all tokens).

    The chained hash of every window of the flat token array is built in `ngram_size` contiguous passes
    (windows that cross a document boundary are computed and never used), then the shingles are picked out.
    """
    lengths = tokens.lengths
    n = len(lengths)
    shingle_counts = np.where(lengths >= ngram_size, lengths - ngram_size + 1, np.minimum(lengths, 1))
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(shingle_counts, out=offsets[1:])
    total = int(offsets[-1])
    document = np.repeat(np.arange(n), shingle_counts)
    first = tokens.offsets[:-1][document] + (np.arange(total) - offsets[:-1][document])
    short = np.flatnonzero((lengths > 0) & (lengths < ngram_size))  # documents: one shingle of width < n
    result = np.empty(total, _U64)
    windows = np.full(len(tokens.hashes), 0x9E3779B97F4A7C15 ^ ngram_size, _U64)
    for position in range(min(ngram_size, len(windows))):
        # windows[i] now chains tokens i .. i+position (for i < len − position)
        _chain(windows[: len(windows) - position], tokens.hashes[position:])
        done = short[lengths[short] == position + 1]
        if len(done):
            result[offsets[done]] = windows[tokens.offsets[done]]
    full = np.flatnonzero(lengths >= ngram_size)
    if len(full) == n:
        result = windows[first]
    elif len(full):
        rows = np.flatnonzero(lengths[document] >= ngram_size)
        result[rows] = windows[first[rows]]
    return NormalisedTokens(result, offsets)


@cache
def permutation_parameters(seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of the `count` hash permutations: a odd, from BLAKE2b of (seed, i), machine-independent."""
    a = np.empty(count, _U64)
    b = np.empty(count, _U64)
    for i in range(count):
        digest = hashlib.blake2b(f"curate.minhash:{seed}:{i}".encode(), digest_size=16).digest()
        a[i] = int.from_bytes(digest[:8], "little") | 1
        b[i] = int.from_bytes(digest[8:], "little")
    a.setflags(write=False)
    b.setflags(write=False)
    return a, b


def minhash_values(shingles: NormalisedTokens, seed: int, num_perm: int) -> np.ndarray:
    """(documents × num_perm) minimum of each permutation over each document's shingles.

    Rows of documents without shingles are all-ones (2^64 − 1); callers mask them by `shingles.lengths`.
    """
    a, b = permutation_parameters(seed, num_perm)
    a = a[:, None]
    b = b[:, None]
    n = len(shingles.offsets) - 1
    result = np.full((num_perm, n), np.iinfo(_U64).max, _U64)
    values = shingles.hashes
    total = len(values)
    owner = np.repeat(np.arange(n), shingles.lengths)
    buffer = np.empty((num_perm, min(_CHUNK_SHINGLES, max(total, 1))), _U64)
    for start in range(0, total, _CHUNK_SHINGLES):
        stop = min(start + _CHUNK_SHINGLES, total)
        chunk = buffer[:, : stop - start]
        np.multiply(a, values[None, start:stop], out=chunk)  # wraps mod 2^64
        np.add(chunk, b, out=chunk)
        owners = owner[start:stop]
        segment = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
        documents = owners[segment]
        minima = np.minimum.reduceat(chunk, segment, axis=1)
        np.minimum(result[:, documents], minima, out=minima)  # a document cut by the chunk boundary
        result[:, documents] = minima
    return np.ascontiguousarray(result.T)


def band_hashes(values: np.ndarray, bands: int, rows_per_band: int) -> np.ndarray:
    """(documents × bands) uint64: each band's `rows_per_band` minimums chained into one hash."""
    n = values.shape[0]
    grouped = values[:, : bands * rows_per_band].reshape(n, bands, rows_per_band)
    h = np.broadcast_to(fmix64(np.arange(bands, dtype=_U64) + _U64(0x5BD1E995)), (n, bands)).copy()
    for row in range(rows_per_band):
        h = _chain(h, grouped[:, :, row])
    return h


def text_hashes(tokens: NormalisedTokens) -> pa.Array:
    """uint64 BLAKE2b of each document's normalised token sequence; null where it is empty."""
    raw = tokens.hashes.astype("<u8", copy=False)
    offsets = tokens.offsets.tolist()
    out = np.zeros(len(offsets) - 1, _U64)
    for i, (start, stop) in enumerate(zip(offsets[:-1], offsets[1:])):
        if stop > start:
            out[i] = int.from_bytes(hashlib.blake2b(raw[start:stop].tobytes(), digest_size=8).digest(), "little")
    return pa.array(out, pa.uint64(), mask=tokens.lengths == 0)


def signatures(words: pa.Array | pa.ChunkedArray, config: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
    """(minhash values (documents × bands·rows), has_signature mask) for a `list<string>` column of tokens."""
    tokens = token_hashes(words)
    shingles = shingle_hashes(tokens, config.ngram_size)
    values = minhash_values(shingles, config.seed, config.bands * config.rows_per_band)
    return values, shingles.lengths > 0


def _bands_array(bands: np.ndarray, valid: np.ndarray) -> pa.Array:
    n, width = bands.shape
    flat = pa.array(bands.reshape(-1), pa.uint64())
    return pa.FixedSizeListArray.from_arrays(flat, width, mask=pa.array(~valid))


@dataclass
class MinhashSignature(Block):
    """Adds `minhash_bands` (`fixed_size_list<uint64>[bands]`, null for a document without tokens) and
    `text_hash` (uint64 of the normalised text, null when empty) from the `words` tokens."""

    config: DedupConfig
    name = "minhash"
    reads = (WORDS,)
    writes = (MINHASH_BANDS, TEXT_HASH)

    def provenance(self) -> dict[str, str]:
        return {"minhash_scheme": SCHEME}

    def apply(self, batch: pa.Table) -> pa.Table:
        tokens = token_hashes(batch[WORDS])
        shingles = shingle_hashes(tokens, self.config.ngram_size)
        values = minhash_values(shingles, self.config.seed, self.config.bands * self.config.rows_per_band)
        bands = band_hashes(values, self.config.bands, self.config.rows_per_band)
        batch = set_column(batch, MINHASH_BANDS, _bands_array(bands, shingles.lengths > 0))
        return set_column(batch, TEXT_HASH, text_hashes(tokens))


@dataclass
class ExactTextHash(Block):
    """Adds `text_hash` (uint64 of the normalised text, null when empty) from the `words` tokens; for
    configs with exact dedup but no MinHash (`MinhashSignature` writes `text_hash` too)."""

    config: DedupConfig
    name = "exact_hash"
    reads = (WORDS,)
    writes = (TEXT_HASH,)

    def provenance(self) -> dict[str, str]:
        return {"minhash_scheme": SCHEME}

    def apply(self, batch: pa.Table) -> pa.Table:
        return set_column(batch, TEXT_HASH, text_hashes(token_hashes(batch[WORDS])))


def dedup_blocks(config: DedupConfig) -> list[Block]:
    """The stage-1 blocks a `dedup:` section asks for (after the word tokens)."""
    if config.enabled:
        return [MinhashSignature(config)]
    if config.exact:
        return [ExactTextHash(config)]
    return []
