"""What a finished run publishes beside its shards: each language's dataset card and the run's `report.html`."""

from __future__ import annotations

from collections.abc import Iterable

from curate.pipeline.publishing.card import write_card
from curate.pipeline.publishing.report import write_report


def write_documents(output_root: str, languages: Iterable[str]) -> str:
    """Write `<out>/<lang>/README.md` for each of `languages` and `<out>/report.html` (every language of the output)
    from the stats and manifests a run left; returns the report's path."""
    for code in languages:
        write_card(output_root, code)
    return write_report(output_root)
