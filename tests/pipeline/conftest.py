"""The reference run of the `curate run` test modules (one per module that asks for it)."""

from __future__ import annotations

import pytest
from run_helpers import run_options

from curate.pipeline.execution.run import run
from curate.pipeline.publishing.documents import write_documents


@pytest.fixture(scope="module")
def reference(mirror, tmp_path_factory):
    """`curate run` of Finnish on the shared mirror, its card and report as the CLI writes them: (output folder,
    stats of fin_Latn)."""
    output = tmp_path_factory.mktemp("reference")
    stats = run(run_options(mirror, output))
    write_documents(str(output), stats.languages)
    return output, stats.languages["fin_Latn"]
