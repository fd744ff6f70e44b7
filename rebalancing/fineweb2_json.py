"""FineWeb2's JSON formats: removal rate distributions in, weights (step tables) out.

A distribution file (FineWeb2's ``rehydration/distributions/fin_Latn.json``) holds one language;
the language is the file name's stem. A file may also map language → distribution. A weights file
(``up_to_10_reps.json``) maps language → {first cluster size of a run (a string): repetitions},
written with ``json.dumps(…, indent=1)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from curate.rebalancing.rehydration import rehydration_table_from_distribution
from curate.rebalancing.removal_rates import RemovalRateDistribution
from curate.rebalancing.step_table import StepTable, validate_step_table


def distribution_to_json(distribution: RemovalRateDistribution) -> str:
    """One language's distribution as FineWeb2 writes it (compact JSON, FineWeb2's key order)."""
    return json.dumps(distribution.to_fineweb2_dict(), separators=(",", ":"))


def distributions_from_json(text: str, *, language: str) -> dict[str, RemovalRateDistribution]:
    """Parse distribution JSON: one distribution (named ``language``) or language → distribution."""
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise ValueError("a distribution file must hold a JSON object")
    if "cluster_sizes" in parsed:
        return {language: RemovalRateDistribution.from_fineweb2_dict(parsed)}
    return {
        name: RemovalRateDistribution.from_fineweb2_dict(fields) for name, fields in parsed.items()
    }


def read_distributions(
    paths: Path | str | Iterable[Path | str],
) -> dict[str, RemovalRateDistribution]:
    """Read FineWeb2 distribution files, language → distribution, in the order given.

    ``paths`` is one file, several files, or a directory (its ``*.json`` files in name order). A
    single-language file is named after its language (``fin_Latn.json`` → ``fin_Latn``).
    """
    distributions: dict[str, RemovalRateDistribution] = {}
    for path in _distribution_files(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ValueError(f"cannot read distribution file {path}: {error.strerror}") from None
        try:
            for language, distribution in distributions_from_json(text, language=path.stem).items():
                if language in distributions:
                    raise ValueError(f"language {language} appears in more than one distribution")
                distributions[language] = distribution
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
    return distributions


def weights_to_json(tables: Mapping[str, Mapping[int, int]]) -> str:
    """Step tables per language in FineWeb2's weights format (``json.dumps(…, indent=1)``)."""
    return json.dumps(
        {
            language: {str(size): reps for size, reps in validate_step_table(table).items()}
            for language, table in tables.items()
        },
        indent=1,
    )


def rehydration_weights(
    distributions: Mapping[str, RemovalRateDistribution], max_repetitions: int
) -> dict[str, StepTable]:
    """FineWeb2's per-language step table for each language's distribution."""
    return {
        language: rehydration_table_from_distribution(distribution, max_repetitions)
        for language, distribution in distributions.items()
    }


def rehydration_command(
    distributions: Path | str | Iterable[Path | str], max_repetitions: int
) -> str:
    """The text ``curate rehydration --distributions FILE.json --max-repetitions M`` prints.

    Reads FineWeb2-format distribution files (one file, several, or a directory) and returns the
    weights JSON, language → {first size of a run: repetitions}, byte for byte as FineWeb2 writes
    its ``up_to_{M:02d}_reps.json``. Raises ``ValueError`` with a one-line reason on bad input.
    """
    return weights_to_json(rehydration_weights(read_distributions(distributions), max_repetitions))


def _distribution_files(paths: Path | str | Iterable[Path | str]) -> list[Path]:
    """Expand one path, several paths or a directory into the list of distribution files."""
    given = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(path) for path in paths]
    files: list[Path] = []
    for path in given:
        if path.is_dir():
            in_directory = sorted(path.glob("*.json"))
            if not in_directory:
                raise ValueError(f"no *.json distribution files in {path}")
            files.extend(in_directory)
        elif path.is_file():
            files.append(path)
        else:
            raise ValueError(f"distribution file {path} does not exist")
    if not files:
        raise ValueError("no distribution files given")
    return files
