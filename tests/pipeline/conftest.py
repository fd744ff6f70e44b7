"""The reference run of the `curate run` test modules (one per module that asks for it)."""

from __future__ import annotations

import pytest
from run_helpers import run_options

from curate.pipeline.execution.run import run


@pytest.fixture(scope="module")
def reference(mirror, tmp_path_factory):
    """`curate run` of Finnish on the shared mirror: (output folder, stats of fin_Latn)."""
    output = tmp_path_factory.mktemp("reference")
    stats = run(run_options(mirror, output))
    return output, stats["fin_Latn"]
