"""New embedding rows for an extended tokenizer (`curate train --new-embeddings mean|focus|random`).

The model's input and output embeddings (one matrix when tied) grow to the extended vocabulary (rounded
up to a multiple of 64) and each new token's row is initialised:

* `mean` (fast vocabulary transfer): the mean of the rows of the token's pieces under the base
  tokenizer, the model's own (the base BPE model applied to the token's bytes);
* `focus` (FOCUS, Dobler & de Melo 2023): a sparsemax-weighted sum of the rows of the old tokens most
  similar to it. Similarity is the cosine of static token embeddings computed here, where FOCUS trains
  fastText: the positive PMI of token co-occurrence within 5 tokens on a seeded sample of the training
  mixture tokenized with the extended tokenizer, reduced to 100 dimensions by a truncated SVD
  (deterministic, no training to diverge; fastText's skip-gram gave "Encountered NaN" on the test
  corpus). The weights are sparsemax over the cosines to the 50 most similar old tokens; a new token
  seen fewer than 3 times in the sample falls back to `mean`;
* `random`: the model's own initialisation (normal, std `initializer_range`).

No row keeps the base's predictions exactly: a new token stands as one input for several, and every merge
brings the earlier tokens closer. What each method keeps at step 0, measured: docs/trainer.md.

The base tokenizer is the `--model` checkpoint's; the extended one must keep its ids (as
`curate extend-tokenizer` does). What was done is returned as a provenance dict that the trainer
writes into the checkpoint's `config.json` (`curate_vocabulary`) and `result.json`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from curate.trainer.config import ConfigError

METHODS = ("mean", "focus", "random")
FOCUS_DOCUMENTS = 20_000
"""Documents of the training mixture that FOCUS's static token embeddings are computed on."""
FOCUS_CANDIDATES = 50
"""Most similar old tokens that sparsemax weighs for each new token."""


def new_token_pieces(base_tokenizer: Any, tokenizer: Any) -> dict[int, list[int]]:
    """Each token of `tokenizer` that `base_tokenizer` lacks, by id -> its pieces' base ids. Raises
    `ConfigError` when `tokenizer` does not keep the base's ids."""
    base_vocab, vocab = base_tokenizer.get_vocab(), tokenizer.get_vocab()
    moved = [t for t, i in base_vocab.items() if vocab.get(t) != i]
    if moved:
        raise ConfigError(f"the tokenizer does not keep the model's token ids ({len(moved)} differ, e.g. "
                          f"{moved[0]!r}): extend the model's tokenizer with `curate extend-tokenizer`")
    model = base_tokenizer.backend_tokenizer.model
    return {index: [base_vocab[t.value] for t in model.tokenize(token)]
            for token, index in sorted(vocab.items(), key=lambda item: item[1]) if token not in base_vocab}


def resize(model: torch.nn.Module, vocab_size: int) -> None:
    """Grow the input and output embeddings (tied or not) to `vocab_size` rounded up to 64 rows."""
    rows = model.get_input_embeddings().weight.shape[0]
    if vocab_size > rows:
        model.resize_token_embeddings(vocab_size, pad_to_multiple_of=64, mean_resizing=False)


@torch.no_grad()
def initialise(model: torch.nn.Module, pieces: dict[int, list[int]], method: str, *, seed: int = 0,
               texts: Sequence[str] = (), tokenize: Any = None) -> dict[str, Any]:
    """Initialise the rows of the new tokens in place; returns what was done (for the provenance)."""
    matrices = _matrices(model)
    ids = sorted(pieces)
    details: dict[str, Any] = {}
    if method == "random":
        generator = torch.Generator().manual_seed(seed)
        std = getattr(model.config, "initializer_range", 0.02)
        for matrix in matrices:
            rows = torch.randn(len(ids), matrix.shape[1], generator=generator) * std
            matrix[ids] = rows.to(matrix.dtype)
        return details
    weights = {index: (parts, [1.0 / len(parts)] * len(parts)) for index, parts in pieces.items()}
    if method == "focus":
        focus, details = focus_weights(pieces, texts, tokenize, seed)
        weights.update(focus)
    for matrix in matrices:
        for index, (parts, share) in weights.items():
            matrix[index] = (torch.tensor(share, dtype=torch.float32)[:, None]
                             * matrix[parts].float()).sum(0).to(matrix.dtype)
    return details


def _matrices(model: torch.nn.Module) -> list[torch.Tensor]:
    embedding = model.get_input_embeddings().weight
    output = model.get_output_embeddings()
    tied = output is None or output.weight is embedding
    return [embedding.data] if tied else [embedding.data, output.weight.data]


def focus_weights(pieces: dict[int, list[int]], texts: Sequence[str], tokenize: Any, seed: int
                  ) -> tuple[dict[int, tuple[list[int], list[float]]], dict[str, Any]]:
    """New id -> (old ids, sparsemax weights) from static-embedding similarities (see the module docstring)."""
    new_ids = set(pieces)
    token_lists = [ids for start in range(0, len(texts), 256) for ids in tokenize(list(texts[start : start + 256]))]
    size = 1 + max([max(pieces)] + [max(ids) for ids in token_lists if ids])
    vectors, counts = cooccurrence_vectors(token_lists, size, seed=seed)
    known = counts >= STATIC_MIN_COUNT
    old = np.array([i for i in np.flatnonzero(known) if i not in new_ids], dtype=np.int64)
    weights: dict[int, tuple[list[int], list[float]]] = {}
    for index in pieces:
        if not known[index] or not len(old):
            continue
        similarity = vectors[old] @ vectors[index]
        top = np.argsort(-similarity, kind="stable")[:FOCUS_CANDIDATES]
        share = sparsemax(similarity[top])
        chosen = share > 0
        weights[index] = (old[top][chosen].tolist(), share[chosen].tolist())
    details = dict(static_embeddings=f"PPMI of token co-occurrence within {STATIC_WINDOW} tokens, truncated SVD "
                                     f"to {vectors.shape[1]} dimensions, cosine similarity",
                   documents=len(texts), new_tokens_with_vectors=len(weights),
                   new_tokens_by_mean=len(pieces) - len(weights))
    return weights, details


STATIC_WINDOW = 5
STATIC_DIM = 100
STATIC_MIN_COUNT = 3


def cooccurrence_vectors(token_lists: Sequence[Sequence[int]], size: int, *, seed: int = 0
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Unit-length static token embeddings `[size, dim]` from the positive PMI of co-occurrence within
    `STATIC_WINDOW` tokens (symmetric), reduced by a truncated SVD (rows `U sqrt(S)`), and each token's
    count. Deterministic: ARPACK starts from a fixed vector."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import svds

    left, right = [], []
    for ids in token_lists:
        array = np.asarray(ids, dtype=np.int64)
        for distance in range(1, STATIC_WINDOW + 1):
            left.append(array[:-distance])
            right.append(array[distance:])
    rows, cols = np.concatenate(left or [np.zeros(0, np.int64)]), np.concatenate(right or [np.zeros(0, np.int64)])
    pairs = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(size, size)).tocsr()
    pairs = (pairs + pairs.T).tocoo()
    counts = np.bincount(np.concatenate([np.asarray(ids, np.int64) for ids in token_lists] or [np.zeros(0, np.int64)]),
                         minlength=size)
    totals = np.asarray(pairs.sum(axis=1)).ravel()
    pmi = np.log(pairs.data * pairs.sum() / (totals[pairs.row] * totals[pairs.col]))
    keep = pmi > 0
    ppmi = coo_matrix((pmi[keep], (pairs.row[keep], pairs.col[keep])), shape=(size, size)).tocsc()
    dim = max(1, min(STATIC_DIM, size - 2))
    u, singular, _ = svds(ppmi, k=dim, v0=np.full(size, 1.0 / np.sqrt(size)))
    vectors = u * np.sqrt(singular)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors, counts


def sparsemax(values: np.ndarray) -> np.ndarray:
    """Euclidean projection of `values` onto the probability simplex (Martins & Astudillo 2016)."""
    z = np.sort(values)[::-1]
    cumulative = np.cumsum(z)
    k = np.arange(1, len(z) + 1)
    support = 1 + k * z > cumulative
    k_max = k[support][-1]
    tau = (cumulative[k_max - 1] - 1) / k_max
    return np.maximum(values - tau, 0.0)


def adapt_vocabulary(model: torch.nn.Module, config: Any, tokenizer: Any,
                     checkpoint: Path | None = None) -> dict[str, Any] | None:
    """For `config.new_embeddings`: resize `model` to `tokenizer` and initialise the new rows (on a
    resume only resize: the checkpoint's weights follow). Returns the provenance, also set as
    `model.config.curate_vocabulary` (so it is saved in every checkpoint's config.json)."""
    from curate.trainer.extend import read_report, sample_documents
    from curate.trainer.tokenizer import TokenizerError, load_tokenizer, make_tokenize

    if config.new_embeddings is None:
        return None
    resize(model, len(tokenizer))
    if checkpoint is not None:
        import json

        saved = json.loads((checkpoint / "model" / "config.json").read_text()).get("curate_vocabulary")
        model.config.curate_vocabulary = saved
        return saved
    try:
        base = load_tokenizer(config.model)
    except TokenizerError as err:
        raise ConfigError(f"--new-embeddings needs the --model checkpoint's own tokenizer: {err}") from None
    pieces = new_token_pieces(base, tokenizer)
    texts: list[str] = []
    if config.new_embeddings == "focus":
        sample, _ = sample_documents([s.path for s in config.sources], FOCUS_DOCUMENTS, 0, config.seed,
                                     config.text_column, config.weight_column)
        texts = [text for text, _ in sample]
    details = initialise(model, pieces, config.new_embeddings, seed=config.seed, texts=texts,
                         tokenize=make_tokenize(tokenizer))
    report = read_report(config.tokenizer) if Path(config.tokenizer).is_dir() else None
    provenance = dict(
        method=config.new_embeddings, tokenizer=config.tokenizer, base_tokenizer=config.model,
        base_vocab_size=len(base), vocab_size=len(tokenizer), new_tokens=len(pieces),
        embedding_rows=model.get_input_embeddings().weight.shape[0], **details,
        extension=None if report is None else {k: report.get(k) for k in
                                                ("base", "first_new_id", "new_merges", "sample")})
    model.config.curate_vocabulary = provenance
    return provenance
