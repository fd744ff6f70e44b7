"""`curate ablate`: a thin typer command over `pipeline.ablation.run_ablation`.

    curate ablate out --lang fin --variants raw,lid,dedup,filtered,rehydrated --tokens 20M \\
        --model tiny --eval flores200/fin_Latn.txt --seeds 0,1
    curate ablate out --lang fin --tokenizers base,extended --model HuggingFaceTB/SmolLM2-135M \
        --extended-tokenizer runs/tok-fin --bytes 50M --eval flores200/fin_Latn.txt \
        --replay-eval flores200/eng_Latn.txt --seeds 0,1

Registered by the application as `app.command()(ablate)`. Nothing heavy is imported at import time
(pyarrow, torch and Ray load when the command runs); user mistakes raise `UserError` (one line,
exit code 2).
"""

from pathlib import Path
from typing import Annotated, Optional

import typer


def ablate(
    output: Annotated[str, typer.Argument(help="The output folder of a `curate run` (local).")],
    lang: Annotated[str, typer.Option("--lang", help="The language: fin or fin_Latn.")],
    eval_texts: Annotated[list[Path], typer.Option(
        "--eval", help="Held-out reference text of the language (one document a line, or Parquet), "
                       "not in the crawl, e.g. FLORES-200; repeatable.")],
    variants: Annotated[str, typer.Option(
        help="Curation steps to compare, comma-separated: raw, lid, dedup, filtered, rehydrated.")]
        = "raw,lid,dedup,filtered,rehydrated",
    tokens: Annotated[str, typer.Option(help="Training tokens of every run: 20M, 500k, 1.5B.")] = "20M",
    model: Annotated[str, typer.Option(
        help="Model trained from scratch per run: tiny, 125m, 350m, 1b, or a config.json.")] = "tiny",
    seeds: Annotated[str, typer.Option(
        help="Seeds, comma-separated; two or more give the seed spread and signal-to-noise.")] = "0",
    tokenizer: Annotated[Optional[str], typer.Option(
        help="HF tokenizer (folder or Hub id); default: a BPE trained on the raw corpus.")] = None,
    vocab_size: Annotated[int, typer.Option(help="Vocabulary of the BPE trained without --tokenizer.")] = 8000,
    seq_len: Annotated[int, typer.Option(help="Tokens per training sequence.")] = 512,
    batch_size: Annotated[int, typer.Option(help="Sequences per optimizer step.")] = 16,
    lr: Annotated[float, typer.Option(help="Peak learning rate (cosine schedule).")] = 1e-3,
    evaluations: Annotated[int, typer.Option(help="Held-out evaluations per run (plus one at step 0).")] = 10,
    eval_max_tokens: Annotated[int, typer.Option(help="Cap on the held-out tokens.")] = 200_000,
    tokenizers: Annotated[Optional[str], typer.Option(
        help="Compare tokenizers instead of curation steps: base,extended continue pretraining the --model "
             "checkpoint with its own and with --extended-tokenizer at the same --bytes of text.")] = None,
    extended_tokenizer: Annotated[Optional[str], typer.Option(
        help="--tokenizers: the extended tokenizer (curate extend-tokenizer).")] = None,
    text_bytes: Annotated[str, typer.Option(
        "--bytes", help="--tokenizers: bytes of training text of every run: 20M, 1.5G.")] = "20M",
    replay_eval: Annotated[Optional[list[Path]], typer.Option(
        help="--tokenizers: held-out text of a replay language (what the model knew); repeatable.")] = None,
    new_embeddings: Annotated[str, typer.Option(
        help="--tokenizers: initialisation of the new tokens' rows: mean, focus or random.")] = "mean",
    gpu: Annotated[Optional[bool], typer.Option(
        "--gpu/--cpu", help="One Ray task per run on one GPU each, or runs one after another on this CPU "
                            "(default: GPUs when the machine or the RAY_ADDRESS cluster has them).")] = None,
) -> None:
    """Train one small model per curation step on the corpus it gives, at equal tokens, and compare
    their held-out bits per byte (table, plot and statistics under OUTPUT/<lang>/ablation/)."""
    from curate.pipeline.ablation import AblationSettings, parse_seeds, parse_tokens, run_ablation

    if tokenizers is not None:
        _ablate_tokenizers(output, lang, tokenizers, model, extended_tokenizer, parse_tokens(text_bytes),
                           eval_texts, replay_eval or [], new_embeddings, parse_seeds(seeds), seq_len,
                           batch_size, lr, evaluations, eval_max_tokens, gpu)
        return
    settings = AblationSettings(
        variants=variants.split(","), tokens=parse_tokens(tokens), model=model,
        eval_texts=[str(p) for p in eval_texts], seeds=parse_seeds(seeds), tokenizer=tokenizer, vocab_size=vocab_size,
        seq_len=seq_len, micro_batch_size=batch_size, lr=lr, evaluations=evaluations,
        eval_max_tokens=eval_max_tokens, use_gpu=gpu)
    from curate.language_configs import load_language_config
    from curate.trainer.contamination import decontamination_notes

    folder = f"{output.rstrip('/')}/{load_language_config(lang).code}"
    for note in decontamination_notes([(folder, folder)], settings.eval_texts):
        typer.echo(note, err=True)
    ablation = run_ablation(output, lang, settings, echo=lambda line: typer.echo(line, err=True))
    typer.echo((ablation.folder / "table.md").read_text(encoding="utf-8"))
    typer.echo(f"wrote {ablation.folder}/ (results.json, table.md, bpb.png) and the `ablation` key of "
               f"{ablation.folder.parent / 'stats.json'}", err=True)


def _ablate_tokenizers(output: str, lang: str, tokenizers: str, model: str, extended: Optional[str],
                       text_bytes: int, eval_texts: list[Path], replay_eval: list[Path], new_embeddings: str,
                       seeds: list[int], seq_len: int, batch_size: int, lr: float, evaluations: int,
                       eval_max_tokens: int, gpu: Optional[bool]) -> None:
    from curate.errors import UserError
    from curate.pipeline.ablation.tokenizers import (TokenizerAblation, parse_tokenizer_variants,
                                                     run_tokenizer_ablation)

    from curate.trainer.config import MODEL_PRESETS

    variants = parse_tokenizer_variants(tokenizers)
    if model in MODEL_PRESETS:
        raise UserError("--tokenizers continues pretraining a checkpoint: give --model FOLDER or a Hub id")
    if "extended" in variants and extended is None:
        raise UserError("--tokenizers extended needs --extended-tokenizer DIR (from curate extend-tokenizer)")
    settings = TokenizerAblation(
        model=model, extended=extended or "", eval_texts=[str(p) for p in eval_texts],
        replay_eval=[str(p) for p in replay_eval], variants=variants, text_bytes=text_bytes,
        new_embeddings=new_embeddings, seeds=seeds, seq_len=seq_len, micro_batch_size=batch_size, lr=lr,
        evaluations=evaluations, eval_max_tokens=eval_max_tokens, use_gpu=gpu)
    result = run_tokenizer_ablation(output, lang, settings, echo=lambda line: typer.echo(line, err=True))
    typer.echo((result.folder / "table.md").read_text(encoding="utf-8"))
    typer.echo(f"wrote {result.folder}/ (results.json, table.md)", err=True)
