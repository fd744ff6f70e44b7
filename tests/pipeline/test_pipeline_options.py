"""`curate run`'s options are built from `RunOptions`' fields: flags, help and defaults agree, the command line's
own forms convert to the fields' values in one place, and the defaults written in the light options module are
those of their home modules."""

from __future__ import annotations

import dataclasses

import pytest
import typer

from curate.errors import UserError
from curate.pipeline.cli.main import app
from curate.pipeline.cli.options import run_options
from curate.pipeline.execution.executor import Resources
from curate.pipeline.execution.options import RunOptions


def command_params(name: str) -> dict[str, object]:
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    return {param.name: param for param in command.params}


def test_every_documented_field_is_an_option_with_its_default_and_help():
    params = command_params("run")
    documented = [f for f in dataclasses.fields(RunOptions) if "help" in f.metadata]
    documented += [f for f in dataclasses.fields(Resources) if "help" in f.metadata]
    assert len(documented) == 33
    for f in documented:
        param = params[f.name]
        assert param.help == f.metadata["help"]
        flags = f.metadata.get("flags") or ("--" + f.name.replace("_", "-"),)
        assert sorted(param.opts + param.secondary_opts) == sorted(flags)
        if f.default is not dataclasses.MISSING and f.name not in ("prefilter", "memory_per_task"):
            assert param.default == f.default, f.name
    assert params["languages"].required and params["snapshots"].required
    assert params["prefilter"].opts == ["--no-prefilter"] and params["prefilter"].default is False
    assert params["output"].opts == ["--output", "-o"]
    assert set(params) - {f.name for f in documented} == {"dry_run", "skip_unavailable"}
    assert "shard_bytes" not in params and "index_records_per_unit" not in params  # API only


def test_other_commands_share_the_same_option():
    assert command_params("snapshots")["source"].help == command_params("run")["source"].help
    assert command_params("extract")["extractor"].default == RunOptions.__dataclass_fields__["extractor"].default


def cli_values(**given) -> dict:
    values = {name: param.default for name, param in command_params("run").items()
              if name not in ("dry_run", "skip_unavailable")}
    return {**values, **given}


def test_no_option_given_makes_the_api_defaults():
    options = run_options(cli_values(languages="fin", snapshots="2024-22"))
    assert options == RunOptions(languages=["fin"], snapshots="2024-22")


def test_command_line_forms_convert_to_the_fields():
    options = run_options(cli_values(languages="fin, swe", snapshots="2024-*", prefilter=True,
                                     robots_agents="CCBot, GPTBot", memory_per_task=512, cpus_per_task=2.0,
                                     max_retries=0, robots_from=["CC-MAIN-2025-05"], optout_lists=["list.txt"]))
    assert options.languages == ["fin", "swe"]
    assert options.prefilter is False
    assert options.robots_agents == ("CCBot", "GPTBot")
    assert options.resources == Resources(cpus_per_task=2.0, memory_per_task=512 * 2**20, max_retries=0)
    assert options.robots_from == ["CC-MAIN-2025-05"] and options.optout_lists == ["list.txt"]
    assert options.decontaminate == []


def test_bad_values_end_with_one_line():
    with pytest.raises(UserError, match="^--rehydration 'linear': choose removal_rates, fineweb2_fixed or none$"):
        run_options(cli_values(languages="fin", snapshots="2024-22", rehydration="linear"))
    with pytest.raises(UserError, match="^--memory-per-task 0"):
        RunOptions(languages=["fin"], snapshots="x", resources=Resources(memory_per_task=0))


def test_defaults_written_here_are_their_homes():
    from curate.blocks.optout import DEFAULT_AGENTS
    from curate.pipeline.execution.stage1 import MAX_ERRORS
    from curate.pipeline.execution.stages import SHARD_BYTES
    from curate.rebalancing import DEFAULT_MIN_DOCS_PER_SIZE

    options = RunOptions(languages=["fin"], snapshots="x")
    assert (options.max_errors, options.rehydration_min_docs) == (MAX_ERRORS, DEFAULT_MIN_DOCS_PER_SIZE)
    assert (options.shard_bytes, options.robots_agents) == (SHARD_BYTES, DEFAULT_AGENTS)


def test_the_command_line_imports_nothing_heavy():
    import subprocess
    import sys

    code = "import sys, curate.pipeline.cli.main; print(sorted({'ray', 'pyarrow', 'numpy'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_progress_written_to_a_file_keeps_its_counts_whole(capsys):
    """A bar sent to a log (not a terminal) is drawn wide enough that the longest stage's counts, rate and times
    are never cut to `…`."""
    from curate.pipeline.cli.progress import Bars

    bars = Bars()
    bars.begin("stage 3: dedup, filter, score", 120, "languages")
    bars.update(120, 120, 1_300)
    bars.end()
    line = [line for line in capsys.readouterr().out.splitlines() if line.strip()][-1]
    assert "stage 3: dedup, filter, score" in line and "120/120 languages" in line and "docs/s" in line
    assert "ETA" in line and "…" not in line
