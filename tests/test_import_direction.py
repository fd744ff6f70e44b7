"""Imports run downward (README, "Where things are"): every module of the package is parsed and each import it
makes, at module level or inside a function, is checked against the layer it sits in."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import curate

ROOT = Path(curate.__file__).resolve().parent
NOT_PACKAGE = {"tests", "benchmarks", ".venv", "build", "dist"}

# each part → the parts it may import (`pipeline` may import every part)
BASE = {"errors", "files"}
ALLOWED = {
    "errors": set(),
    "files": {"errors"},
    "language_configs": BASE,
    "blocks": BASE | {"language_configs"},
    "dedup": BASE | {"language_configs", "blocks"},
    "rebalancing": BASE | {"language_configs", "blocks"},
    "trainer": set(),  # nothing from the curation side
}
RAY_ALLOWED = {"trainer/ray_train.py"}  # the trainer's Ray Train launcher; otherwise only `pipeline` uses Ray


def modules() -> list[Path]:
    return sorted(path for path in ROOT.rglob("*.py")
                  if not NOT_PACKAGE & set(path.relative_to(ROOT).parts[:-1])
                  and not path.relative_to(ROOT).parts[0].endswith(".egg-info"))


def part_of(path: Path) -> str:
    parts = path.relative_to(ROOT).parts
    return parts[0] if len(parts) > 1 else path.stem


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in `path`, relative ones made absolute (`curate.…`)."""
    package = ["curate", *path.relative_to(ROOT).parts[:-1]]
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1] + [node.module or ""]).rstrip(".") \
                if node.level else node.module or ""
            names += [(node.lineno, f"{base}.{alias.name}" if base == "curate" else base) for alias in node.names]
    return names


def violations(path: Path) -> list[str]:
    part, relative = part_of(path), path.relative_to(ROOT).as_posix()
    found = []
    for line, name in imported(path):
        where = f"{relative}:{line} imports {name}"
        top = name.split(".")
        if top[0] == "ray" and part != "pipeline" and relative not in RAY_ALLOWED:
            found.append(where)
        if top[0] == "curate" and len(top) > 1 and part in ALLOWED and top[1] != part \
                and top[1] not in ALLOWED[part]:
            found.append(where)
    return found


def test_the_package_is_found():
    parts = {part_of(path) for path in modules()}
    assert {"pipeline", "blocks", "dedup", "rebalancing", "language_configs", "trainer", "files", "errors"} <= parts
    assert len(modules()) > 100


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_imports_run_downward(part):
    found = [v for path in modules() if part_of(path) == part for v in violations(path)]
    assert found == []


def test_a_violation_is_caught(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "language_configs").mkdir()
    module = tmp_path / "language_configs" / "bad.py"
    module.write_text("def f():\n    from curate.blocks.lid import LanguageId\n    from ..pipeline import cli\n"
                      "    import ray.data\n", encoding="utf-8")
    assert violations(module) == ["language_configs/bad.py:2 imports curate.blocks.lid",
                                  "language_configs/bad.py:3 imports curate.pipeline",
                                  "language_configs/bad.py:4 imports ray.data"]


def test_every_subpackage_is_in_the_wheel():
    """A folder of the package with an `__init__.py` that pyproject.toml's `packages` leaves out installs nowhere."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(("curate", *path.relative_to(ROOT).parts[:-1])) for path in modules()
             if path.name == "__init__.py"}
    assert found <= listed, sorted(found - listed)
