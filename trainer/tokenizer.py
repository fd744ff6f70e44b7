"""Tokenizers: load any HF tokenizer, or train a small byte-level BPE for trials and tests."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from curate.trainer.data import Tokenize

EOS_TOKEN = "<|endoftext|>"
"""End-of-document token of tokenizers trained here (also used as BOS and padding)."""


class TokenizerError(ValueError):
    """The tokenizer cannot be loaded or lacks what training needs; one line says what to do."""


def load_tokenizer(name_or_path: str) -> Any:
    """An HF tokenizer from a folder or the Hub (`transformers.AutoTokenizer`), checked to have EOS."""
    from transformers import AutoTokenizer

    local = Path(name_or_path).expanduser()
    looks_local = name_or_path.startswith(("/", ".", "~")) or name_or_path.count("/") > 1
    if looks_local and not local.exists():  # not a Hub id: fail now, not after network retries
        raise TokenizerError(f"tokenizer folder {name_or_path!r} does not exist")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(local) if looks_local else name_or_path)
    except (OSError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TokenizerError(f"cannot load tokenizer {name_or_path!r}: {first_line}") from None
    if tokenizer.eos_token_id is None:
        raise TokenizerError(f"tokenizer {name_or_path!r} has no EOS token; documents are "
                             "separated by EOS, so give a tokenizer that defines one")
    return tokenizer


def make_tokenize(tokenizer: Any) -> Tokenize:
    """Batch tokenization without special tokens, through the Rust backend when there is one
    (no length warnings, parallel across the batch)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        def tokenize(texts: list[str]) -> list[list[int]]:
            return [encoding.ids for encoding in backend.encode_batch(texts, add_special_tokens=False)]
    else:
        def tokenize(texts: list[str]) -> list[list[int]]:
            return [tokenizer.encode(text, add_special_tokens=False) for text in texts]
    return tokenize


def train_bpe_tokenizer(texts: Iterable[str], out_dir: str | Path, vocab_size: int = 8000,
                        min_frequency: int = 2) -> Any:
    """Train a byte-level BPE (GPT-2 pre-tokenization, no unknown tokens) on `texts` and save it
    in HF format to `out_dir`, with `<|endoftext|>` as EOS/BOS/padding. Returns the HF tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 257 + 1:
        raise TokenizerError("vocab_size must exceed the 256 byte symbols plus EOS (use >= 258)")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=[EOS_TOKEN], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS_TOKEN,
                                        bos_token=EOS_TOKEN, pad_token=EOS_TOKEN)
    tokenizer.save_pretrained(str(out_dir))
    return tokenizer
