"""Tiny transformer scorers made in the tests: a WordPiece tokenizer trained on ../shared/data/text, BERT models of
2 layers × 32 hidden with a fixed seed (one per kind), saved with `save_pretrained`; and the direct
`transformers` forward pass the scorers must match."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_POSITIONS = 96  # below the documents' lengths: truncation is exercised
LABELS = {"single_label": ["news", "forum", "shop"], "multilabel": ["narrative", "informational", "opinion", "spam"]}


@dataclass(frozen=True)
class TinyModels:
    regression: Path
    single_label: Path
    multilabel: Path
    encoder: Path
    head: Path


def training_lines(shared: Path) -> list[str]:
    lines: list[str] = []
    for path in sorted((shared / "data" / "text" / "fi").glob("*.txt"))[:3]:
        lines += path.read_text(encoding="utf-8").splitlines()[:3000]
    for code in ("fin_Latn", "eng_Latn", "swe_Latn"):
        lines += (shared / "data" / "text" / "flores200" / f"{code}.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip()]


def train_tokenizer(shared: Path):
    """A lowercasing WordPiece tokenizer (BERT's recipe) trained on Finnish, English and Swedish text."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    raw = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    raw.normalizer = normalizers.BertNormalizer(lowercase=True)
    raw.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    raw.train_from_iterator(training_lines(shared), trainers.WordPieceTrainer(vocab_size=3000, special_tokens=specials))
    raw.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", raw.token_to_id("[CLS]")), ("[SEP]", raw.token_to_id("[SEP]"))])
    raw.decoder = decoders.WordPiece()
    return BertTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]")


def bert_config(tokenizer, hidden: int = 32, layers: int = 2, positions: int = MAX_POSITIONS,
                initializer_range: float = 0.3, **extra):
    """A BERT of the given size; the tests' wide init (0.3) makes scores differ clearly between documents."""
    from transformers import BertConfig

    return BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                      num_attention_heads=max(2, hidden // 64), intermediate_size=hidden * 2 if hidden < 64 else
                      hidden * 4, max_position_embeddings=positions, initializer_range=initializer_range, **extra)


def build_tiny_models(root: Path, shared: Path) -> TinyModels:
    import torch
    from safetensors.torch import save_file
    from transformers import BertForSequenceClassification, BertModel

    tokenizer = train_tokenizer(shared)

    def config(**extra):
        return bert_config(tokenizer, **extra)

    def save(model, name: str) -> Path:
        folder = root / name
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        return folder

    torch.manual_seed(0)
    regression = save(BertForSequenceClassification(config(num_labels=1, problem_type="regression")), "edu")
    single = save(BertForSequenceClassification(config(
        num_labels=3, id2label=dict(enumerate(LABELS["single_label"])),
        label2id={v: k for k, v in enumerate(LABELS["single_label"])})), "genre")
    multi = save(BertForSequenceClassification(config(
        num_labels=4, problem_type="multi_label_classification", id2label=dict(enumerate(LABELS["multilabel"])),
        label2id={v: k for k, v in enumerate(LABELS["multilabel"])})), "register")
    encoder = save(BertModel(config()), "encoder")
    head = root / "head.safetensors"
    mlp = torch.nn.Sequential(torch.nn.Linear(32, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    save_file({k: v.contiguous() for k, v in mlp.state_dict().items()}, str(head))
    return TinyModels(regression, single, multi, encoder, head)


def direct_outputs(folder: Path, texts: list[str], head: Path | None = None) -> np.ndarray:
    """What a plain `transformers` user computes: one document at a time, truncated to the model's positions."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    if head is None:
        model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    else:
        model = AutoModel.from_pretrained(folder).eval()
        mlp = torch.nn.Sequential(torch.nn.Linear(32, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
        mlp.load_state_dict(load_file(str(head)))
    rows = []
    with torch.inference_mode():
        for text in texts:
            encoded = tokenizer(text, truncation=True, max_length=MAX_POSITIONS, return_tensors="pt")
            if head is None:
                rows.append(model(**encoded).logits[0].numpy())
            else:
                rows.append(mlp(model(**encoded).last_hidden_state[0].mean(0)).numpy())
    return np.stack(rows)
