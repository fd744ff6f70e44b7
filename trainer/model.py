"""Models: Llama-family causal LMs through `transformers`, their FLOPs per token, how they are
and how they are compiled (the loss is `trainer.loss`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from curate.trainer.config import MODEL_PRESETS, ConfigError, TrainConfig


def build_model(config: TrainConfig, vocab_size: int, eos_id: int) -> torch.nn.Module:
    """The model to train, in fp32 on the CPU with SDPA attention: the `model` checkpoint, or a
    fresh Llama from `model_config` with the vocabulary padded to a multiple of 64."""
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    if config.model is not None:
        try:
            model = AutoModelForCausalLM.from_pretrained(config.model, dtype=torch.float32,
                                                         attn_implementation="sdpa")
        except (OSError, ValueError) as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(f"cannot load model {config.model!r}: {first_line}") from None
        rows = model.get_input_embeddings().weight.shape[0]
        if vocab_size > rows and config.new_embeddings is None:
            raise ConfigError(f"the tokenizer has {vocab_size} tokens but the model only {rows} embeddings: "
                              "give --new-embeddings mean|focus|random for the new tokens, or use the "
                              "model's own tokenizer")
        return model
    assert config.model_config is not None
    if config.model_config in MODEL_PRESETS:
        shape: dict[str, Any] = dict(MODEL_PRESETS[config.model_config])
    else:
        shape = json.loads(Path(config.model_config).read_text())
        shape.pop("vocab_size", None)
    shape.setdefault("max_position_embeddings", config.seq_len)
    llama = LlamaConfig(vocab_size=-(-vocab_size // 64) * 64, bos_token_id=eos_id, eos_token_id=eos_id,
                        pad_token_id=eos_id, **shape)
    torch.manual_seed(config.seed)  # the same initial weights on every worker
    return LlamaForCausalLM(llama).float()  # SDPA attention is transformers' default


def flops_per_token(model: torch.nn.Module, seq_len: int) -> float:
    """Training FLOPs per token: `6 N + 12 L d T` (PaLM, appendix B; as in nanoGPT).

    N is the parameter count without the input-embedding table (a lookup, no matmul; with tied
    embeddings the table is the output layer and counts), L the layers, d the attention width
    (heads x head size), T the sequence length. 6 N is the forward and backward matmuls, 12 L d T
    the attention scores and values (the causal mask's saved half is not subtracted).
    """
    cfg = model.config
    n_params = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight
    output = model.get_output_embeddings()
    tied = output is not None and output.weight is embedding
    if not tied:
        n_params -= embedding.numel()
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    attention_width = cfg.num_attention_heads * head_dim
    return 6.0 * n_params + 12.0 * cfg.num_hidden_layers * attention_width * seq_len


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The transformer blocks (for per-block compile and FSDP wrapping)."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    return list(layers) if layers is not None else []


COMPILE_BACKEND = "inductor"
"""`torch.compile` backend of `compile_layers` (tests set `eager`: the same graph capture, no codegen)."""
def compile_layers(model: torch.nn.Module) -> None:
    """`torch.compile` each decoder layer in place, as one shared graph.

    Dynamo inlines `nn.Module`s, so a layer's weights are graph inputs rather than guards and every
    layer reuses the graph of the first one. That holds only while nothing specific to a layer
    reaches its forward: the loop calls the model with `use_cache=False` (a KV cache's update is
    keyed by `layer_idx`, which would compile every layer again and, past dynamo's recompile limit,
    leave the rest eager). Per layer rather than whole model: FSDP2 shards per layer, and the one
    graph compiles in seconds whatever the depth.
    """
    for layer in decoder_layers(model):
        layer.compile(backend=COMPILE_BACKEND)
