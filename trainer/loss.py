"""The language-model loss without logits: output projection and cross-entropy fused, chunk by chunk.

`linear_cross_entropy(hidden, weight, targets)` is `F.cross_entropy(hidden @ weight.T, targets,
reduction="sum")` in fp32, computed `chunk_rows(vocab)` positions at a time by a custom autograd
Function. What exists at once:

* forward: one chunk of logits (`rows x vocab`, in the matmul dtype, and its fp32 copy), reduced to
  each position's log-sum-exp and target logit, then dropped;
* held for backward: the inputs the caller holds anyway (`hidden`, `weight`, `targets`) and one fp32
  log-sum-exp per position (`4 x positions` bytes): no logits;
* backward: the chunk's logits are recomputed, turned into `softmax - onehot` in place, and
  multiplied into the chunk's rows of `grad_hidden` and into `grad_weight` (fp32, `vocab x width`).

So peak memory grows with `chunk x vocab`, not `batch x seq x vocab`. Under autocast the two matmuls run
in the autocast dtype (bf16 on a GPU), both in the forward and the recomputation, and everything after
them (log-sum-exp, softmax, the loss) in fp32.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

CHUNK_ELEMENTS = 1 << 25
"""Logits per chunk (32 Mi: 128 MiB in fp32): 1,024 positions at a 32k vocabulary, 256 at 128k."""


def chunk_rows(vocab_size: int, elements: int = CHUNK_ELEMENTS) -> int:
    """Positions per chunk so that one chunk holds at most `elements` logits (at least one position)."""
    return max(1, elements // max(1, vocab_size))


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         rows: int | None = None) -> torch.Tensor:
    """Summed cross-entropy (fp32 scalar) of the logits `hidden @ weight.T` against `targets`,
    never materialising the logits (see the module docstring). `hidden` is `[..., width]`, `weight`
    `[vocab, width]`, `targets` `[...]`; `rows` overrides the positions per chunk."""
    flat_hidden = hidden.reshape(-1, hidden.shape[-1])
    flat_targets = targets.reshape(-1)
    device_type = hidden.device.type
    dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else weight.dtype
    return _LinearCrossEntropy.apply(flat_hidden, weight, flat_targets,
                                     rows or chunk_rows(weight.shape[0]), dtype)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, rows: int,
                dtype: torch.dtype) -> torch.Tensor:
        lse = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        with torch.autocast(hidden.device.type, enabled=False):
            w = weight.to(dtype)
            for start in range(0, hidden.shape[0], rows):
                stop = min(start + rows, hidden.shape[0])
                logits = (hidden[start:stop].to(dtype) @ w.T).float()
                chunk_lse = torch.logsumexp(logits, dim=-1)
                lse[start:stop] = chunk_lse
                target_logits = logits.gather(1, targets[start:stop, None]).squeeze(1)
                total += (chunk_lse - target_logits).sum()
                del logits
        ctx.save_for_backward(hidden, weight, targets, lse)
        ctx.rows, ctx.dtype = rows, dtype
        return total

    @staticmethod
    def backward(ctx: Any, grad_total: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        hidden, weight, targets, lse = ctx.saved_tensors
        rows, dtype = ctx.rows, ctx.dtype
        need_hidden, need_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_hidden = torch.empty_like(hidden) if need_hidden else None
        grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_weight else None
        with torch.autocast(hidden.device.type, enabled=False):
            w = weight.to(dtype)
            for start in range(0, hidden.shape[0], rows):
                stop = min(start + rows, hidden.shape[0])
                h = hidden[start:stop].to(dtype)
                probs = (h @ w.T).float()
                probs.sub_(lse[start:stop, None]).exp_()  # softmax, in place
                index = torch.arange(stop - start, device=probs.device)
                probs[index, targets[start:stop]] -= 1.0  # d loss / d logits = softmax - onehot
                grad_logits = probs.mul_(grad_total).to(dtype)
                del probs
                if grad_hidden is not None:
                    grad_hidden[start:stop] = grad_logits @ w
                if grad_weight is not None:
                    if dtype == torch.float32:
                        grad_weight.addmm_(grad_logits.T, h)
                    else:  # a bf16 matmul (fp32 accumulation inside), summed over chunks in fp32
                        grad_weight += grad_logits.T @ h
        return (grad_hidden, grad_weight.to(weight.dtype) if grad_weight is not None else None,
                None, None, None)


def output_layer(model: torch.nn.Module) -> torch.nn.Module:
    """The model's output projection (`lm_head`), through a DDP wrapper."""
    inner = getattr(model, "module", model)  # DistributedDataParallel
    head = inner.get_output_embeddings()
    if head is None or getattr(head, "bias", None) is not None:
        raise ValueError("the model's output layer must be a Linear without bias (an LM head)")
    return head


@contextmanager
def hidden_states_out(head: torch.nn.Module) -> Iterator[None]:
    """Make `head` return its input, so the model's `.logits` are its final hidden states (computed
    inside the model's own forward, under DDP / FSDP hooks) and the projection is left to the loss."""
    own = head.__dict__.get("forward")  # a wrapper someone set on the instance (hooks), kept
    head.forward = lambda hidden: hidden  # type: ignore[method-assign]
    try:
        yield
    finally:
        if own is None:
            del head.forward
        else:
            head.forward = own


def model_nll(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed next-token cross-entropy of `model` on `inputs` -> `targets`, without logits: the
    model runs up to its final norm, `linear_cross_entropy` does the output projection."""
    head = output_layer(model)
    with hidden_states_out(head):
        hidden = model(input_ids=inputs, use_cache=False).logits
    return linear_cross_entropy(hidden, head.weight, targets)
