"""The fused output projection + cross-entropy: equal to the plain computation, and no logits held."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from curate.trainer.loss import chunk_rows, linear_cross_entropy, model_nll


class LargestTensor(TorchDispatchMode):
    """Records the bytes of the largest tensor any operation creates while active."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(tensor, torch.Tensor):
                self.largest = max(self.largest, tensor.untyped_storage().nbytes())
        return out


def _inputs(positions: int, width: int, vocab: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(positions, width, generator=generator).requires_grad_()
    weight = (torch.randn(vocab, width, generator=generator) * 0.2).requires_grad_()
    targets = torch.randint(0, vocab, (positions,), generator=generator)
    return hidden, weight, targets


@pytest.mark.parametrize("rows", [7, 64, 10_000])  # short last chunk, several chunks, one chunk
def test_loss_and_gradients_equal_the_unchunked_computation(rows: int) -> None:
    hidden, weight, targets = _inputs(200, 48, 3000)
    loss = linear_cross_entropy(hidden.view(4, 50, 48), weight, targets.view(4, 50), rows=rows)
    loss.backward()
    plain_hidden, plain_weight = hidden.detach().clone().requires_grad_(), weight.detach().clone().requires_grad_()
    plain = F.cross_entropy(plain_hidden @ plain_weight.T, targets, reduction="sum")
    plain.backward()
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, plain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(hidden.grad, plain_hidden.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(weight.grad, plain_weight.grad, rtol=1e-5, atol=1e-5)


def test_bf16_autocast_matches_a_bf16_projection_with_an_fp32_loss() -> None:
    hidden, weight, targets = _inputs(64, 32, 500)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = linear_cross_entropy(hidden, weight, targets, rows=16)
    plain = F.cross_entropy((hidden.bfloat16() @ weight.bfloat16().T).float(), targets, reduction="sum")
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, plain, rtol=1e-5, atol=1e-4)
    loss.backward()
    assert hidden.grad.dtype == weight.grad.dtype == torch.float32


def test_forward_and_backward_never_hold_the_logits() -> None:
    """At a 65,536 vocabulary and 512 positions the logits would be 128 MiB in fp32: neither a tensor
    created during the forward and backward pass nor what the loss keeps for backward comes near."""
    positions, width, vocab = 512, 32, 65_536
    hidden, weight, targets = _inputs(positions, width, vocab)
    logits_bytes = positions * vocab * 4
    saved: list[int] = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved.append(tensor.untyped_storage().nbytes())
        return tensor

    with LargestTensor() as tracker:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = linear_cross_entropy(hidden, weight, targets, rows=32)
        loss.backward()
    chunk_bytes = 32 * vocab * 4
    assert tracker.largest <= max(chunk_bytes, weight.numel() * 4)  # a chunk, or the weight's gradient
    assert tracker.largest < logits_bytes / 8
    assert sum(saved) == hidden.numel() * 4 + weight.numel() * 4 + positions * 8 + positions * 4
    assert sum(saved) < logits_bytes / 8  # inputs, targets and one log-sum-exp per position
    with torch.no_grad(), LargestTensor() as unchunked:
        hidden @ weight.T
    assert unchunked.largest == logits_bytes  # what the tracker sees when the logits do exist


def test_chunks_hold_a_bounded_number_of_logits() -> None:
    assert chunk_rows(32_768) == 1024 and chunk_rows(131_072) == 256 and chunk_rows(10**9) == 1


def test_model_nll_is_the_models_own_loss() -> None:
    """Through a Llama: the head returns hidden states during the call only, and the summed loss equals
    transformers' mean loss times the positions (tied and untied output layers)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    for tied in (True, False):
        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                             tie_word_embeddings=tied))
        tokens = torch.randint(0, 300, (2, 17), generator=torch.Generator().manual_seed(1))
        ours = model_nll(model, tokens[:, :-1], tokens[:, 1:]) / 32
        ours.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        model.zero_grad()
        theirs = model(input_ids=tokens, labels=tokens, use_cache=False)
        theirs.loss.backward()
        assert theirs.logits.shape == (2, 17, 300)  # the head is the model's again
        torch.testing.assert_close(ours, theirs.loss, rtol=1e-5, atol=1e-6)
        for name, param in model.named_parameters():
            torch.testing.assert_close(grads[name], param.grad, rtol=1e-4, atol=1e-6)
