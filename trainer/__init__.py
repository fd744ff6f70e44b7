"""curate's small continued-pretraining (CPT) trainer: Parquet shards in, HF checkpoints out.

    from curate.trainer import TrainConfig, train, launch
    config = TrainConfig(mix="out/fin_Latn=0.75,replay.parquet=0.25",
                         model="HuggingFaceTB/SmolLM2-135M", steps=2000, seq_len=2048)
    result = train(config)                  # this process: CPU or one GPU
    result = launch(config, num_workers=8)  # Ray Train: DDP / FSDP over 8 GPUs

Modules: `config` (TrainConfig, --mix), `data` (Parquet sources, mixture, packing), `loader`
(prefetching micro-batches), `tokenizer`, `extend` (extending a checkpoint's BPE with a new language's
tokens), `embeddings` (their new rows), `model`, `loss` (output projection + cross-entropy without
logits), `schedule` (LR as a function of the step),
`evaluate` (held-out loss, bits per byte), `checkpoint`, `metrics` (tokens/s, MFU, logs),
`distributed` (DDP / FSDP2), `ray_train` (launch on Ray Train), `loop` (the training loop), `cli`.

Needs the `train` extra (torch, transformers); `trainer.config` and `trainer.cli` import without
it, and the names below load their modules on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from curate.trainer.config import ConfigError, SourceSpec, TrainConfig, parse_mix

_LAZY = {
    "train": "curate.trainer.loop",
    "TrainResult": "curate.trainer.loop",
    "launch": "curate.trainer.ray_train",
    "lr_at": "curate.trainer.schedule",
    "train_bpe_tokenizer": "curate.trainer.tokenizer",
    "load_tokenizer": "curate.trainer.tokenizer",
    "extend_tokenizer": "curate.trainer.extend",
    "DataError": "curate.trainer.data",
}

__all__ = ["ConfigError", "SourceSpec", "TrainConfig", "parse_mix", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'trainer' has no attribute {name!r}")
