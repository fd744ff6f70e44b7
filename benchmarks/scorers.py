"""The stage-3 scorers on the same documents: docs/s per core of each, and the ratio against datatrove where it has
the same scorer.

    .venv/bin/python benchmarks/scorers.py [--documents 800] [--repeat 3]

Input: Finnish documents from ../shared/data/text/fi (paragraphs of consecutive sentences), with SEO spam and
boilerplate made from them (tests/scorers/scorers_helpers.py) in a 2:1:1 mix, with their real LID scores (ft176)
and URLs. The models are trained here on the same text (not timed): a fastText classifier (dim 64, 1 M buckets, as
`curate train-classifier` trains by default) and a 5-gram KenLM model in KenLM's binary format (`lmplz`).

Peers, in this process on the same core:
- quality: datatrove's `FastTextClassifierFilter` with the same model (one `predict` per document);
- perplexity: datatrove's `KenlmModel.get_perplexity` with the same KenLM model and its SentencePiece step
  replaced by the identity (datatrove's normalisation — whole numbers → 0 — differs a little from CCNet's, so the
  values are compared as a median relative difference).
- transformer (regression head): a plain `transformers` `pipeline("text-classification")` over the same model
  and texts, one document per call and with `batch_size=32`; scores compared as the largest absolute difference.
  The model is a BERT made here (`--transformer-hidden`, `--transformer-layers`, 512 positions, WordPiece
  vocabulary trained on the same Finnish text): no model is downloaded. `--device cuda` runs both sides on a GPU
  (wall seconds then, since CPU time does not measure GPU work).
The other scorers have no datatrove counterpart: their docs/s is printed alone.

Times are CPU seconds of this process pinned to one core, the best of `--repeat` passes after a warm-up pass.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks"), str(ROOT / "tests" / "scorers")]

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
from common import pin_to_one_core, table  # noqa: E402
from scorers_helpers import boilerplate, finnish_documents, junk, lid_scores, seo_spam  # noqa: E402

from curate.blocks.score_perplexity import Perplexity, _load_kenlm, train_kenlm  # noqa: E402
from curate.blocks.score_quality import QualityClassifier, train_classifier  # noqa: E402
from curate.blocks.score_toxicity import AdultDomain, ToxicityLexicon  # noqa: E402
from curate.blocks.score_transformer import TransformerScorer, TransformerScores, load_checkpoint  # noqa: E402
from curate.blocks.score_web_docs import WebDocsScore  # noqa: E402
from curate.language_configs.scorers import PerplexityConfig, TransformerScorerConfig, WebDocsConfig  # noqa: E402

LDNOOBW_FI = ROOT.parent / "shared" / "reference" / "ldnoobw" / "fi"


def best_cpu(function, repeat: int) -> float:
    function()  # warm-up: models loaded, caches filled
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        function()
        best = min(best, time.process_time() - start)
    return best


def datatrove_quality(model: Path, texts: list[str]):
    from datatrove.data import Document
    from datatrove.pipeline.filters import FastTextClassifierFilter
    from fasttext.FastText import _FastText

    step = FastTextClassifierFilter(str(model), keep_labels=("hq", 0.5), newline_replacement=" ")
    step._model = _FastText(str(model))  # what its `model` property loads, without copying the file to its cache

    def run() -> list[float]:
        documents = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
        for document in documents:
            step.filter(document)
        return [d.metadata.get("__label__hq", 0.0) for d in documents]

    return run


def datatrove_perplexity(model: Path, texts: list[str]):
    from datatrove.utils.perplexity import KenlmModel

    class Identity:
        def tokenize(self, text: str) -> str:
            return text

    peer = KenlmModel(model_dataset="", language="fi")
    peer._model, peer._tokenizer = _load_kenlm(str(model)), Identity()

    def run() -> list[float]:
        return [peer.get_perplexity(t) for t in texts]

    return run


def save_transformer(folder: Path, hidden: int, layers: int) -> Path:
    """A BERT regression model (random weights, seed 0) with a WordPiece vocabulary trained on ../shared text."""
    import torch
    from transformer_helpers import bert_config, train_tokenizer
    from transformers import BertForSequenceClassification

    tokenizer = train_tokenizer(ROOT.parent / "shared")
    torch.manual_seed(0)
    model = BertForSequenceClassification(bert_config(tokenizer, hidden, layers, 512, initializer_range=0.02,
                                                      num_labels=1, problem_type="regression"))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def web_lengths(documents: list[str], count: int) -> list[str]:
    """Documents of web-like lengths: 1 to 20 consecutive paragraphs joined (a long tail, like real pages)."""
    rng = np.random.default_rng(0)
    out, start = [], 0
    for _ in range(count):
        parts = int(min(20, rng.geometric(0.3)))
        out.append("\n".join(documents[(start + i) % len(documents)] for i in range(parts)))
        start += parts
    return out


def transformer_rows(folder: Path, texts: list[str], device: str, repeat: int) -> tuple[list[list[object]], float]:
    """Ours against the plain pipeline, one document per call and batched; returns rows and the largest score
    difference."""
    from transformers import pipeline

    ours = TransformerScores([TransformerScorer("edu_score", TransformerScorerConfig(
        model=str(folder), kind="regression", device="gpu" if device == "cuda" else "cpu"))])
    if device == "cuda":
        from curate.blocks import score_transformer

        checkpoint = load_checkpoint(str(folder), None, "mean", "cuda")
        score_transformer.TransformerScorer.checkpoint = lambda self, device="cpu": checkpoint  # run ours on the GPU
    pipe = pipeline("text-classification", model=str(folder), function_to_apply="none",
                    device=0 if device == "cuda" else -1)
    batch = pa.table({"text": texts})

    def clock(function) -> float:
        if device != "cuda":
            return best_cpu(function, repeat)
        import torch

        function()
        best = float("inf")
        for _ in range(repeat):
            torch.cuda.synchronize()
            start = time.perf_counter()
            function()
            torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        return best

    def one_by_one() -> list[float]:
        return [pipe(t, truncation=True, max_length=512)[0]["score"] for t in texts]

    def batched() -> list[float]:
        return [r["score"] for r in pipe(texts, batch_size=32, truncation=True, max_length=512)]

    seconds = clock(lambda: ours(batch))
    n, rows = len(texts), []
    for name, peer in (("pipeline, one document per call", one_by_one), ("pipeline, batch_size=32", batched)):
        peer_seconds = clock(peer)
        rows.append([f"transformer ({device}) vs {name}", round(n / seconds, 1), round(n / peer_seconds, 1),
                     round(peer_seconds / seconds, 2)])
    difference = float(np.max(np.abs(np.array(ours(batch)["edu_score"].to_pylist()) - np.array(one_by_one()))))
    return rows, difference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=800, help="documents (half clean, half junk)")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes; the fastest counts")
    parser.add_argument("--transformer-documents", type=int, default=200, help="documents for the transformer")
    parser.add_argument("--transformer-hidden", type=int, default=256, help="BERT hidden size")
    parser.add_argument("--transformer-layers", type=int, default=4, help="BERT layers")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the transformer runs")
    parser.add_argument("--only-transformer", action="store_true", help="skip the other scorers")
    args = parser.parse_args()

    every = finnish_documents()
    train, clean = every[args.documents // 2:], every[: args.documents // 2]
    texts = clean + junk(clean[::2], seo_spam, 1) + junk(clean[1::2], boilerplate, 2)
    urls = [f"https://www.sivusto{i}.fi/uutiset/{i}" for i in range(len(texts))]
    urls[::50] = ["https://www.pornhub.com/view"] * len(urls[::50])
    batch = pa.table({"text": texts, "url": urls, "language_score": lid_scores(texts)})
    words = sum(len(t.split()) for t in texts) / len(texts)

    with tempfile.TemporaryDirectory() as folder:
        transformer = save_transformer(Path(folder) / "bert", args.transformer_hidden, args.transformer_layers)
        if args.device == "cpu":
            import torch

            torch.set_num_threads(1)
            cpu = pin_to_one_core()
        sample = web_lengths(every, args.transformer_documents)
        transformer_table, transformer_difference = transformer_rows(transformer, sample, args.device, 1)
        print(f"transformer: BERT {args.transformer_layers} x {args.transformer_hidden}, {len(sample)} documents "
              f"({sum(len(t.split()) for t in sample) / len(sample):.0f} words each, truncated at 512 tokens)")
        print(table(transformer_table, ["scorer", "curate docs/s", "pipeline docs/s", "ratio"]))
        print(f"transformer: largest score difference to the pipeline {transformer_difference:.2e}")
        if args.only_transformer:
            return
        quality_model = train_classifier(train, junk(train, seo_spam, 3) + junk(train, boilerplate, 4),
                                         Path(folder) / "quality.bin", lr=0.5).path
        kenlm_model = train_kenlm(train, Path(folder) / "fin.binary", order=5).path
        cpu = pin_to_one_core()
        n = len(texts)
        rows: list[list[object]] = []

        def add(name: str, block=None, seconds: float | None = None, peer: float | None = None) -> None:
            seconds = seconds if seconds is not None else best_cpu(lambda: block(batch), args.repeat)
            rows.append([name, round(n / seconds), round(n / peer) if peer else "", round(peer / seconds, 2)
                         if peer else ""])

        add("web_docs (model-free 0-10)", WebDocsScore(WebDocsConfig()))
        ours = QualityClassifier(str(quality_model), "__label__hq")
        add("quality (fastText, dim 64)", ours, peer=best_cpu(datatrove_quality(quality_model, texts), args.repeat))
        add("toxicity (LDNOOBW fi word list)", ToxicityLexicon(str(LDNOOBW_FI), False, None, "fin_Latn"))
        adult = AdultDomain()
        adult.check()  # the UT1 list loaded once per worker (0.4 s), outside the timing
        add("adult_domain (UT1 list)", adult)
        perplexity = Perplexity(PerplexityConfig(model=str(kenlm_model)), "fin_Latn")
        peer = datatrove_perplexity(kenlm_model, texts)
        add("perplexity (KenLM 5-gram)", perplexity, peer=best_cpu(peer, args.repeat))

        ours_values = np.array(perplexity(batch)["perplexity"].to_pylist())
        peer_values = np.array(peer())
        difference = np.nanmedian(np.abs(ours_values - peer_values) / peer_values)

    print(f"fin_Latn, {n} documents ({len(clean)} clean, {n - len(clean)} spam and boilerplate; {words:.0f} words "
          f"each), one core (cpu {cpu}), best of {args.repeat}")
    print(table(rows, ["scorer", "curate docs/s", "datatrove docs/s", "ratio"]))
    print(f"perplexity: median relative difference to datatrove's normalisation {difference:.2%}")


if __name__ == "__main__":
    main()
