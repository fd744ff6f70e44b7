"""The options of `curate run`, built from `RunOptions`' fields (`pipeline/execution/options.py`: their flags, help
and defaults), and the one place where an option's command-line form becomes the field's value.

A field is an option when its metadata has help; a field whose default is a dataclass (`resources`) gives one
option per field of it, in its place. Most options are the field as it is; `CLI_FORMS` lists those the command
line takes in another form (`--lang fin,swe`, `--no-prefilter`, `--robots-agents A,B`, `--memory-per-task` in
MB), and a list field is a repeatable option.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any, Optional

import typer

from curate.pipeline.execution.options import RunOptions

ParseFn = Callable[[Any], Any]


def _comma_tuple(value: str | None) -> tuple[str, ...] | None:
    return tuple(a.strip() for a in value.split(",") if a.strip()) if value else None


def _megabytes(value: int | None) -> int | None:
    return value * 2**20 if value else None


def parse_languages(value: str, lid: str | None = None) -> list[str]:
    """`--lang`: a comma-separated list, `all-configured` (the config files) or `all` (every language a run
    accepts; with `--lid ft176`, those lid.176 labels, said on the first line)."""
    from curate.language_configs import configured_languages
    from curate.language_configs.schema import available_languages

    if value == "all-configured":
        return configured_languages()
    if value != "all":
        return [v.strip() for v in value.split(",") if v.strip()]
    every = available_languages()
    if lid != "ft176":
        return every
    from curate.language_configs.labels import ft176_labels

    labelled = [code for code in every if code in set(ft176_labels().values())]
    typer.echo(f"--lang all with --lid ft176: the {len(labelled)} languages lid.176 labels; the other "
               f"{len(every) - len(labelled):,} need GlotLID (--lid glotlid)", err=True)
    return labelled


# field → (its command-line annotation, default and conversion to the field's value; None: the field's default).
# `languages` needs `--lid` too: `run_options` resolves it.
CLI_FORMS: dict[str, tuple[Any, Any, ParseFn]] = {
    "languages": (str, inspect.Parameter.empty, lambda value: value),
    "prefilter": (bool, False, lambda no_prefilter: not no_prefilter),
    "robots_agents": (Optional[str], None, _comma_tuple),
    "memory_per_task": (Optional[int], None, _megabytes),
}


def _option_fields() -> list[tuple[dataclasses.Field, Any, str | None]]:
    """(field, its resolved type, the RunOptions field holding it when it is a field of a nested dataclass)."""
    hints = typing.get_type_hints(RunOptions)
    found = []
    for f in dataclasses.fields(RunOptions):
        if dataclasses.is_dataclass(f.default_factory):  # `resources`: its fields, in its place
            inner = typing.get_type_hints(f.default_factory)
            found += [(g, inner[g.name], f.name) for g in dataclasses.fields(f.default_factory) if "help" in g.metadata]
        elif "help" in f.metadata:
            found.append((f, hints[f.name], None))
    return found


def _parameter(f: dataclasses.Field, hint: Any) -> inspect.Parameter:
    if f.name in CLI_FORMS:
        annotation, default, _ = CLI_FORMS[f.name]
    elif typing.get_origin(hint) is list:
        annotation, default = Optional[hint], None  # repeatable; none given: the field's default
    else:
        annotation = hint
        default = (f.default if f.default is not dataclasses.MISSING else
                   inspect.Parameter.empty if f.default_factory is dataclasses.MISSING else None)
    flags = f.metadata.get("flags") or ("--" + f.name.replace("_", "-"),)
    extra = {"min": f.metadata["minimum"]} if f.metadata.get("minimum") is not None else {}
    option = typer.Option(*flags, help=f.metadata["help"], **extra)
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[annotation, option])


def run_parameters(*names: str) -> list[inspect.Parameter]:
    """The command-line parameters of the named `RunOptions` options (every one when none is named)."""
    chosen = [_parameter(f, hint) for f, hint, _ in _option_fields() if not names or f.name in names]
    missing = set(names) - {p.name for p in chosen}
    if missing:
        raise ValueError(f"no RunOptions option {', '.join(sorted(missing))}")
    return chosen


def with_run_options(*names: str) -> Callable[[Callable], Callable]:
    """Give a command the named `RunOptions` options (every one when none is named), with their flags, help and
    defaults. A parameter of the function with an option's name is replaced by it, in place; a function taking
    `**options` gets the others first, then its own parameters."""

    def decorate(func: Callable) -> Callable:
        own = list(inspect.signature(func, eval_str=True).parameters.values())
        chosen = run_parameters(*names)
        by_name = {p.name: p for p in chosen}
        spread = [p for p in chosen if p.name not in {q.name for q in own}]
        if spread and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in own):
            raise TypeError(f"{func.__name__} takes no **options for {', '.join(p.name for p in spread)}")
        kept = [by_name.get(p.name, p.replace(kind=inspect.Parameter.KEYWORD_ONLY)) for p in own
                if p.kind is not inspect.Parameter.VAR_KEYWORD]
        func.__signature__ = inspect.Signature(spread + kept)  # type: ignore[attr-defined]
        return func

    return decorate


def run_options(values: dict[str, Any]) -> RunOptions:
    """`RunOptions` from the command line's values: the one place where their command-line form is converted."""
    options: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}  # `resources`' fields
    for f, hint, parent in _option_fields():
        if f.name not in values:
            continue
        value = values[f.name]
        if f.name in CLI_FORMS:
            value = CLI_FORMS[f.name][2](value)
        elif typing.get_origin(hint) is list:
            value = list(value or [])
        if value is None and f.default_factory is not dataclasses.MISSING:
            continue  # e.g. `--robots-agents` not given: the field's own default
        (nested.setdefault(parent, {}) if parent else options)[f.name] = value
    options["languages"] = parse_languages(values["languages"], values.get("lid"))
    kinds = {f.name: f.default_factory for f in dataclasses.fields(RunOptions)}
    return RunOptions(**options, **{name: kinds[name](**fields) for name, fields in nested.items()})
