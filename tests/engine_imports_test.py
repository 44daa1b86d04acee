"""The engine's helpers never import the engine's core, not even for type hints.

import-linter (make lint) leaves TYPE_CHECKING imports out, and a cycle hidden
there is still a cycle of knowledge: the helpers would reach into the engine
again. They see it through `runbook.engine.ports` instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import runbook.engine

ENGINE = Path(runbook.engine.__file__).parent
CORE = "runbook.engine.core"


def imported(tree: ast.Module) -> set[str]:
    """Every module an import names (`from a import b` names a and a.b), TYPE_CHECKING too."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            # A relative import inside runbook/engine/ starts from runbook.engine.
            base = node.module or ""
            if node.level:
                base = ".".join(["runbook.engine", *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_no_helper_imports_the_core() -> None:
    helpers = [p for p in sorted(ENGINE.glob("*.py")) if p.name not in ("core.py", "__init__.py")]
    assert len(helpers) >= 8, "the engine's modules are where this test looks for them"
    offenders = [
        p.name
        for p in helpers
        if any(n == CORE or n.startswith(CORE + ".") for n in imported(ast.parse(p.read_text())))
    ]
    assert offenders == [], f"these import {CORE}: {offenders}"


@pytest.mark.parametrize(
    "source",
    [
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from runbook.engine.core import Engine\n",
        "from runbook.engine import core\n",
        "import runbook.engine.core\n",
        "from .core import Engine\n",
        "from . import core\n",
    ],
)
def test_every_spelling_of_the_import_is_seen(source: str) -> None:
    assert CORE in imported(ast.parse(source))
