"""`curate train-classifier` and `curate train-kenlm`: thin typer commands over the scorers' training API.

    curate train-classifier --positive good.parquet --negative web.parquet --out quality.bin
    curate train-kenlm --lang fin --text ../shared/data/text/fi/*.txt --out fin.binary

Registered by the application as `app.command("train-classifier")(train_classifier)` and
`app.command("train-kenlm")(train_kenlm)`. Nothing heavy is imported at import time (fastText, pyarrow, KenLM
load inside the commands). User mistakes raise `UserError` (the CLI prints `error: …` and exits with 2).
The Python API: `blocks.score_quality.train_classifier`, `blocks.score_perplexity.train_kenlm`.
"""

import glob
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from curate.errors import UserError
from curate.blocks.model_files import first_line


def _expand(paths: list[str]) -> list[Path]:
    """Files named by `paths`: files, folders (their `*.parquet` and `*.txt` files) and globs."""
    found: list[Path] = []
    for path in paths:
        matches = sorted(glob.glob(path)) if glob.has_magic(path) else [path]
        if not matches:
            raise UserError(f"{path!r} matches no file")
        for match in map(Path, matches):
            if match.is_dir():
                inside = sorted([*match.glob("*.parquet"), *match.glob("*.txt")])
                if not inside:
                    raise UserError(f"{match} holds no .parquet or .txt file")
                found += inside
            elif match.is_file():
                found.append(match)
            else:
                raise UserError(f"{match} does not exist")
    return found


def _parquet_texts(path: Path, column: str) -> list[str]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=[column])
    except Exception as error:  # noqa: BLE001 - a bad input file is the user's to fix
        raise UserError(f"cannot read column {column!r} of {path} as Parquet ({first_line(error)}); "
                        f"check the file or pass --text-column") from None
    return [t for t in table[column].to_pylist() if t]


def _documents(paths: list[str], column: str) -> Iterator[str]:
    """Documents of Parquet files (`column`) and lines of text files."""
    for path in _expand(paths):
        if path.suffix == ".parquet":
            yield from _parquet_texts(path, column)
        else:
            with path.open(encoding="utf-8", errors="replace") as handle:
                yield from (line for line in handle if line.strip())


def train_classifier(
    positive: Annotated[list[str], typer.Option(
        help="Parquet file, folder or glob of the class to score high (repeat for more).")],
    negative: Annotated[list[str], typer.Option(
        help="Parquet file, folder or glob of the other class (repeat for more).")],
    out: Annotated[Path, typer.Option(help="The fastText model to write (.bin).")],
    text_column: Annotated[str, typer.Option(help="Column holding the documents.")] = "text",
    label: Annotated[str, typer.Option(help="Label of the positive class (the scorer's `label`).")]
        = "__label__hq",
    other_label: Annotated[str, typer.Option(help="Label of the negative class.")] = "__label__lq",
    held_out: Annotated[float, typer.Option(help="Share of each class kept out of training for the "
                                                 "precision / recall printed.")] = 0.1,
    epoch: Annotated[int, typer.Option(help="Passes over the training data.")] = 5,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 0.1,
    word_ngrams: Annotated[int, typer.Option(help="Word n-gram length (2: DCLM's bigram classifier).")] = 2,
    dim: Annotated[int, typer.Option(help="Embedding size.")] = 64,
    buckets: Annotated[int, typer.Option(help="Hash buckets of the n-gram embeddings (model size ~ buckets × "
                                              "dim × 4 bytes).")] = 1_000_000,
    min_count: Annotated[int, typer.Option(help="Words seen fewer times are ignored.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the split, the shuffle and fastText.")] = 0,
    threads: Annotated[int, typer.Option(help="fastText threads (at least 11: fewer leave part of fastText's "
                                              "embedding matrix uninitialised).")] = 11,
) -> None:
    """Train a fastText quality classifier (for `scorers.quality`) from two sets of Parquet documents."""
    from curate.blocks.score_quality import train_classifier as train

    positives, negatives = list(_documents(positive, text_column)), list(_documents(negative, text_column))
    report = train(positives, negatives, out, label=label, other_label=other_label, held_out=held_out,
                   epoch=epoch, lr=lr, word_ngrams=word_ngrams, dim=dim, min_count=min_count, buckets=buckets,
                   seed=seed, threads=threads)

    def number(value: float) -> str:
        return "n/a" if math.isnan(value) else f"{value:.3f}"

    typer.echo(f"wrote {report.path}: trained on {report.train_documents} documents "
               f"({len(positives)} positive, {len(negatives)} negative in all)")
    typer.echo(f"held out {report.held_out_documents}: precision {number(report.precision)}, "
               f"recall {number(report.recall)} for {report.label} at probability >= 0.5")
    typer.echo(f"use it: scorers: {{quality: {{model: {report.path}, label: {report.label}}}}}")


def train_kenlm(
    lang: Annotated[str, typer.Option("--lang", help="The language the model is for (fin, fin_Latn, …).")],
    text: Annotated[list[str], typer.Option(
        help="Text files (a document or sentence a line), Parquet files (their --text-column), folders or globs: "
             "--text a.txt b.txt … or --text a.txt --text b.txt.")],
    out: Annotated[Path, typer.Option(help="The model to write: .arpa, or .binary for KenLM's binary format.")],
    more: Annotated[list[str] | None, typer.Argument(help="More --text paths.", show_default=False)] = None,
    order: Annotated[int, typer.Option(help="n-gram order.")] = 5,
    memory: Annotated[str, typer.Option(help="lmplz sorting memory (-S): 1G, 20%, …")] = "1G",
    discount_fallback: Annotated[bool, typer.Option(
        "--discount-fallback/--no-discount-fallback",
        help="Let lmplz train on small corpora (fixed Kneser-Ney discounts where they cannot be estimated).")]
        = True,
    text_column: Annotated[str, typer.Option(help="Column holding the documents in Parquet input.")] = "text",
) -> None:
    """Train a KenLM model (for `scorers.perplexity`) with lmplz on CCNet-normalised text."""
    from curate.blocks.score_perplexity import train_kenlm as train
    from curate.language_configs import ConfigError
    from curate.language_configs.schema import resolve_language

    try:
        code = resolve_language(lang)
    except ConfigError as error:
        raise UserError(str(error)) from None
    report = train(_documents([*text, *(more or [])], text_column), out, order=order, memory=memory,
                   discount_fallback=discount_fallback)
    typer.echo(f"wrote {report.path}: {report.order}-gram KenLM model of {report.words:,} words in "
               f"{report.lines:,} lines")
    typer.echo(f"use it in language_configs/{code}.yaml: scorers: {{perplexity: {{model: {report.path}}}}}")
