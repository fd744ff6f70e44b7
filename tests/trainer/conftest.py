"""Fixtures of the trainer tests: real Finnish and English text from ../shared/data, a byte-level
BPE trained here, Parquet sources laid out like curate's output, and a tiny-model config."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from torch_threads import one_torch_thread  # noqa: E402, F401 (autouse: one torch thread)
from trainer_testdata import (FI_DIR, FINNISH_RUN_STEPS, FLORES, HELDOUT_FI, finnish_weights,  # noqa: E402
                              make_config, read_lines)

from curate.trainer import TrainConfig, train  # noqa: E402


@pytest.fixture(scope="session")
def fi_documents() -> list[str]:
    """Finnish documents: every 4 consecutive sentences of UD Finnish and WMT newstest joined."""
    sentences = [s for f in sorted(FI_DIR.glob("*.txt")) for s in read_lines(f)]
    return [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]


@pytest.fixture(scope="session")
def en_documents() -> list[str]:
    """English replay documents: FLORES-200 English sentences, two a document."""
    sentences = read_lines(FLORES / "eng_Latn.txt")
    return [" ".join(sentences[i : i + 2]) for i in range(0, len(sentences), 2)]


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory, fi_documents: list[str],
                  en_documents: list[str]) -> Path:
    """A 768-token byte-level BPE trained on the training texts."""
    from curate.trainer.tokenizer import train_bpe_tokenizer

    out = tmp_path_factory.mktemp("tokenizer")
    train_bpe_tokenizer(fi_documents + en_documents, out, vocab_size=768)
    return out


@pytest.fixture(scope="session")
def curated_dir(tmp_path_factory: pytest.TempPathFactory, fi_documents: list[str]) -> Path:
    """A curate output folder: `data/<dump>/*.parquet` shards with a weight column, and a
    `_work/` stage file that must not be read."""
    root = tmp_path_factory.mktemp("out") / "fin_Latn"
    weights = finnish_weights(len(fi_documents))
    half = len(fi_documents) // 2
    for index, (lo, hi) in enumerate([(0, half), (half, len(fi_documents))]):
        shard = root / "data" / "CC-MAIN-2024-10" / f"{index:05d}.parquet"
        shard.parent.mkdir(parents=True, exist_ok=True)
        table = pa.table({"text": fi_documents[lo:hi], "weight": weights[lo:hi],
                          "id": [f"doc-{i}" for i in range(lo, hi)]})
        pq.write_table(table, shard, row_group_size=500)
    work = root / "_work" / "stage1" / "bucket.parquet"
    work.parent.mkdir(parents=True)
    pq.write_table(pa.table({"text": ["NOT A FINAL SHARD"] * 10}), work)
    (root / "README.md").write_text("dataset card")
    return root


@pytest.fixture(scope="session")
def replay_file(tmp_path_factory: pytest.TempPathFactory, en_documents: list[str]) -> Path:
    """Replay data: plain Parquet text without a weight column."""
    path = tmp_path_factory.mktemp("replay") / "replay.parquet"
    pq.write_table(pa.table({"text": en_documents}), path, row_group_size=200)
    return path


@pytest.fixture(scope="session")
def mix(curated_dir: Path, replay_file: Path) -> str:
    """The curated Finnish plus a quarter of English replay."""
    return f"{curated_dir}=0.75,{replay_file}=0.25"


@pytest.fixture
def tiny_config(tmp_path: Path, tokenizer_dir: Path, mix: str):
    """Factory of tiny-model configs on the Finnish + English mixture, writing under tmp_path."""

    def make(**overrides: Any) -> TrainConfig:
        overrides.setdefault("out_dir", tmp_path / "run")
        return make_config(overrides.pop("out_dir"), tokenizer_dir, overrides.pop("mix", mix),
                           **overrides)

    return make


@pytest.fixture(scope="session")
def finnish_run(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path, mix: str):
    """150 steps (77k tokens) on 75 % curated Finnish + 25 % English replay, evaluated on
    FLORES Finnish at steps 0, 75 and 150, checkpointed at 75 and 150 (test_train.py checks the run;
    its last checkpoint is the base model of test_new_embeddings.py)."""
    config = make_config(tmp_path_factory.mktemp("finnish"), tokenizer_dir, mix, steps=FINNISH_RUN_STEPS,
                         eval_texts=[str(HELDOUT_FI)], eval_every=75, eval_max_tokens=20_000,
                         ckpt_every=75, log_every=25)
    return config, train(config)
