"""MinHash signatures: normalisation, edge cases, the vectorised code against a per-document reference, and the
Jaccard estimate against the true Jaccard and datasketch on real Finnish text."""

from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np
import pyarrow as pa
import pytest
from dedup_helpers import jaccard, sampled_document, share_for, shingles, variant

import curate.blocks.minhash as minhash
from curate.blocks.minhash import (
    MINHASH_BANDS,
    TEXT_HASH,
    ExactTextHash,
    MinhashSignature,
    dedup_blocks,
    normalise_tokens,
    permutation_parameters,
    signatures,
)
from curate.language_configs.minhash import DedupConfig

CONFIG = DedupConfig()
MASK = (1 << 64) - 1


# --- an independent, per-document reference (plain Python integers) ------------------------------------


def _fmix(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & MASK
    return h ^ (h >> 33)


def _normalise(word: str) -> str:
    word = unicodedata.normalize("NFD", word.lower())
    kept = "".join(
        c for c in word if not (unicodedata.category(c) in ("Mn", "Cc", "Cf") or unicodedata.category(c)[0] in "PSZ")
    )
    return re.sub(r"\d+", "0", kept)


def _token_hash(token: str) -> int:
    data = token.encode()
    if len(data) > 64:
        return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & MASK
    return _fmix(h ^ len(data))


def reference_signature(words: list[str], config: DedupConfig) -> tuple[list[int] | None, int | None]:
    tokens = [t for t in (_normalise(w) for w in words) if t]
    if not tokens:
        return None, None
    hashes = [_token_hash(t) for t in tokens]
    n = config.ngram_size
    windows = [hashes[i : i + n] for i in range(len(hashes) - n + 1)] if len(hashes) >= n else [hashes]
    shingle_hashes = []
    for window in windows:
        h = 0x9E3779B97F4A7C15 ^ n
        for value in window:
            h = _fmix(h ^ value)
        shingle_hashes.append(h)
    a, b = permutation_parameters(config.seed, config.num_permutations)
    values = [min((int(ai) * x + int(bi)) & MASK for x in shingle_hashes) for ai, bi in zip(a, b)]
    bands = []
    for band in range(config.bands):
        h = _fmix(band + 0x5BD1E995)
        for value in values[band * config.rows_per_band : (band + 1) * config.rows_per_band]:
            h = _fmix(h ^ value)
        bands.append(h)
    text = hashlib.blake2b(b"".join(h.to_bytes(8, "little") for h in hashes), digest_size=8).digest()
    return bands, int.from_bytes(text, "little")


def _apply(documents: list[list[str] | None], config: DedupConfig = CONFIG) -> pa.Table:
    return MinhashSignature(config)(pa.table({"words": pa.array(documents, pa.list_(pa.string()))}))


# --- tests ---------------------------------------------------------------------------------------------------


def test_normalisation_lowercases_strips_accents_digits_and_punctuation():
    words = ["Äiti", "CAFÉ", "2017", "9-vuotias", ",", "H&M", "  ", "š", "Ω", "1.5"]
    expected = ["aiti", "cafe", "0", "0vuotias", "", "hm", "", "s", "ω", "0"]
    assert normalise_tokens(pa.array(words)).to_pylist() == expected
    for word in words:
        assert normalise_tokens(pa.array([word])).to_pylist() == [_normalise(word)]


def test_equal_normalised_texts_have_equal_signatures_and_text_hashes():
    table = _apply(
        [
            ["Hyvää", "päivää", "!", "Tänään", "on", "14", "astetta"],
            ["hyvaa", "PAIVAA", "tanaan", "on", "99", "astetta", "."],
        ]
    )
    assert table[MINHASH_BANDS][0] == table[MINHASH_BANDS][1]
    assert table[TEXT_HASH][0] == table[TEXT_HASH][1]
    other = _apply([["hyvaa", "paivaa", "tanaan", "on", "astetta", "0"]])
    assert other[TEXT_HASH][0] != table[TEXT_HASH][0]  # word order matters


def test_short_and_empty_documents(sentences):
    documents = [[], None, ["!", "?"], ["yksi"], ["yksi", "kaksi"], ["kaksi", "yksi"], ["a", "b", "c"], sentences[0]]
    valid = [False, False, False, True, True, True, True, True]
    table = _apply(documents)
    assert table.num_rows == len(documents)
    bands = table[MINHASH_BANDS]
    assert [bands[i].is_valid for i in range(len(documents))] == valid
    assert [table[TEXT_HASH][i].is_valid for i in range(len(documents))] == valid
    assert bands[4] != bands[5]  # a short document is one shingle of all its words, in order
    assert _apply([[]]).num_rows == 1
    assert _apply([]).num_rows == 0


def test_block_contract():
    block = MinhashSignature(CONFIG)
    assert block.name == "minhash" and block.reads == ("words",) and block.writes == (MINHASH_BANDS, TEXT_HASH)
    table = _apply([["yksi", "kaksi", "kolme"]])
    assert table.schema.field(MINHASH_BANDS).type == pa.list_(pa.uint64(), CONFIG.bands)
    assert table.schema.field(TEXT_HASH).type == pa.uint64()
    assert ExactTextHash(CONFIG).writes == (TEXT_HASH,)
    assert [type(b) for b in dedup_blocks(CONFIG)] == [MinhashSignature]
    assert [type(b) for b in dedup_blocks(DedupConfig(enabled=False))] == [ExactTextHash]
    assert dedup_blocks(DedupConfig(enabled=False, exact=False)) == []
    with pytest.raises(KeyError, match="words"):
        block(pa.table({"text": ["x"]}))
    import pickle

    assert pickle.loads(pickle.dumps(block)) == block


@pytest.mark.parametrize("chunk", [3, 50, 2048])
def test_vectorised_equals_per_document_reference(sentences, monkeypatch, chunk):
    """Batches of mixed lengths, with permutation chunks that cut documents, give the reference's bands."""
    monkeypatch.setattr(minhash, "_CHUNK_SHINGLES", chunk)
    rng = np.random.default_rng(3)
    documents = [sampled_document(sentences, rng, int(rng.integers(1, 60))) for _ in range(12)]
    documents += [[], ["!"], ["x" * 100, "y" * 65, "ä" * 33], ["Yksi"], sentences[5][:4], sentences[6][:5]]
    table = _apply(documents)
    for i, words in enumerate(documents):
        bands, text = reference_signature(words, CONFIG)
        assert table[MINHASH_BANDS][i].as_py() == bands, i
        assert table[TEXT_HASH][i].as_py() == text, i


def test_signatures_do_not_depend_on_the_batch(sentences):
    rng = np.random.default_rng(4)
    documents = [sampled_document(sentences, rng, int(rng.integers(1, 300))) for _ in range(30)]
    together = _apply(documents)[MINHASH_BANDS].to_pylist()
    alone = [_apply([d])[MINHASH_BANDS][0].as_py() for d in documents]
    assert together == alone
    chunked = MinhashSignature(CONFIG)(
        pa.Table.from_batches(
            [
                pa.record_batch({"words": pa.array(documents[:10], pa.large_list(pa.string()))}),
                pa.record_batch({"words": pa.array(documents[10:], pa.large_list(pa.string()))}),
            ]
        )
    )
    assert chunked[MINHASH_BANDS].to_pylist() == together


def test_other_settings_change_the_signature(sentences):
    words = sentences[10] + sentences[11]
    base = _apply([words])[MINHASH_BANDS][0].as_py()
    assert _apply([words], DedupConfig(seed=2))[MINHASH_BANDS][0].as_py() != base
    assert _apply([words], DedupConfig(ngram_size=3))[MINHASH_BANDS][0].as_py() != base
    assert len(_apply([words], DedupConfig(bands=20, rows_per_band=5))[MINHASH_BANDS][0].as_py()) == 20


def test_jaccard_estimate_matches_true_jaccard_and_datasketch(sentences, vocabulary):
    """On real Finnish near-duplicates, the share of equal minimums estimates the shingle-set Jaccard without
    bias and with the binomial spread sqrt(J(1 − J)/112), like datasketch's MinHash on the same shingles."""
    from datasketch import MinHash

    rng = np.random.default_rng(5)
    pairs = []
    for target in np.linspace(0.2, 0.95, 160):
        base = sampled_document(sentences, rng)
        pairs.append((base, variant(base, share_for(target), vocabulary, rng)))
    flat = [words for pair in pairs for words in pair]
    values, valid = signatures(pa.array(flat, pa.list_(pa.string())), CONFIG)
    assert valid.all()
    truth, ours, theirs = [], [], []
    for i, (a, b) in enumerate(pairs):
        truth.append(jaccard(a, b))
        ours.append(float(np.mean(values[2 * i] == values[2 * i + 1])))
        sketches = []
        for words in (a, b):
            sketch = MinHash(num_perm=CONFIG.num_permutations, seed=1)
            sketch.update_batch([" ".join(s).encode() for s in shingles(words)])
            sketches.append(sketch)
        theirs.append(sketches[0].jaccard(sketches[1]))
    truth, ours, theirs = np.array(truth), np.array(ours), np.array(theirs)
    sigma = np.sqrt(truth * (1 - truth) / CONFIG.num_permutations)
    z = (ours - truth) / np.maximum(sigma, 1e-9)
    assert np.all(np.abs(ours - truth) <= 5 * sigma + 1.5 / CONFIG.num_permutations)
    assert abs(z.mean()) < 4 / np.sqrt(len(z)), f"biased estimate: mean z {z.mean():.3f}"
    assert 0.7 < z.std() < 1.3, f"spread {z.std():.2f}× the binomial one"
    ours_mse, theirs_mse = np.mean((ours - truth) ** 2), np.mean((theirs - truth) ** 2)
    assert 0.6 < ours_mse / theirs_mse < 1.6, (ours_mse, theirs_mse)
