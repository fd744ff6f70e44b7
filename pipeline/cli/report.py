"""`curate report OUT`: (re)write `OUT/report.html` from what a run left (registered in `pipeline/cli/main.py`)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer


def report(
    output: Annotated[str, typer.Argument(help="the output folder of a run (a path or an fsspec URL)")],
    lang: Annotated[Optional[str], typer.Option("--lang", help="only these languages, comma-separated (default: "
                                                               "every language with a stats.json)")] = None,
) -> None:
    """(Re)write OUTPUT/report.html: funnel, removal per rule, language mix, dedup, rehydration, scores, throughput."""
    from curate.pipeline.publishing.report import write_report

    languages = [v.strip() for v in lang.split(",") if v.strip()] if lang else None
    typer.echo(write_report(output, languages))
