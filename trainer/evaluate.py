"""Held-out evaluation: loss and bits per byte on reference texts.

The texts are tokenized once into one stream `EOS doc1 EOS doc2 EOS ...` (whole documents, up to
`max_tokens`) and cut into non-overlapping windows of `seq_len` targets, so every token of every
document and every separating EOS is predicted exactly once. Bits per byte divides the summed
loss (in bits) by the UTF-8 bytes of the documents plus one byte per document for its separator
(the newline it replaced), which makes it comparable across tokenizers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import torch

from curate.trainer.data import DataError, Tokenize
from curate.trainer.loss import model_nll


@dataclass
class EvalSet:
    """Fixed evaluation windows and the byte count they cover."""

    windows: list[np.ndarray]
    """Token windows; each predicts `len(window) - 1` targets."""
    n_bytes: int
    n_documents: int

    @property
    def n_targets(self) -> int:
        return sum(len(w) - 1 for w in self.windows)

    @classmethod
    def from_texts(cls, texts: Iterable[str], tokenize: Tokenize, eos_id: int, seq_len: int,
                   max_tokens: int) -> "EvalSet":
        """Whole documents from `texts` while the stream stays within `max_tokens` targets."""
        stream, n_bytes, n_documents, texts = [eos_id], 0, 0, iter(texts)
        while batch := list(itertools.islice(texts, 256)):
            for text, ids in zip(batch, tokenize(batch)):
                if len(stream) + len(ids) + 1 > max_tokens + 1:
                    break
                stream.extend([*ids, eos_id])
                n_bytes += len(text.encode("utf-8")) + 1
                n_documents += 1
            else:
                continue
            break
        if n_documents == 0:
            raise DataError("no held-out document fits: the eval texts are empty or "
                             "eval_max_tokens is smaller than their first document")
        tokens = np.asarray(stream, dtype=np.int64)
        windows = [tokens[i : i + seq_len + 1] for i in range(0, len(tokens) - 1, seq_len)]
        return cls(windows, n_bytes, n_documents)


@torch.no_grad()
def evaluate(model: torch.nn.Module, eval_set: EvalSet, device: torch.device, batch_size: int,
             autocast: Callable[[], AbstractContextManager[None]]) -> dict[str, float]:
    """Mean loss (nats per token) and bits per byte of `model` on `eval_set`."""
    was_training = model.training
    model.eval()
    total_nats = torch.zeros((), dtype=torch.float64, device=device)
    full = [w for w in eval_set.windows if len(w) == len(eval_set.windows[0])]
    batches = [np.stack(full[i : i + batch_size]) for i in range(0, len(full), batch_size)]
    batches += [w[None] for w in eval_set.windows[len(full):]]  # the shorter last window
    for batch in batches:
        tokens = torch.from_numpy(batch).to(device)
        with autocast():
            total_nats += model_nll(model, tokens[:, :-1], tokens[:, 1:]).double()
    model.train(was_training)
    nats = total_nats.item()
    return dict(loss=nats / eval_set.n_targets, bpb=nats / math.log(2) / eval_set.n_bytes)
