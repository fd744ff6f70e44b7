"""The docstrings under a config dataclass's fields: the tests check every field has one (README, generated
YAML comments)."""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import fields


def field_docs(cls: type) -> dict[str, str]:
    """Each field's docstring (the string under it in the source), for generated YAML comments and the README."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, following in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):
            docs[node.target.id] = " ".join(following.value.value.split())
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in docs.items() if k in names}
