"""What every check needs: the project context and ways to place a Problem."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook import loader
from runbook.errors import Problem
from runbook.model import Inventory, Loc, Playbook, Scale
from runbook.yamlsrc import DataPath, Document, format_path

BUILTIN_VARS = frozenset({"target", "run", "playbook", "now"})


@dataclass
class Context:
    """What the checks of one playbook know about the project around it."""

    inventory: Inventory | None
    root: Path
    cache: dict[Path, tuple[Playbook | None, list[Problem]]] = field(default_factory=dict)

    @property
    def scale(self) -> Scale:
        return self.inventory.scale if self.inventory else Scale.default()

    def load(self, path: Path) -> tuple[Playbook | None, list[Problem]]:
        key = path.resolve()
        if key not in self.cache:
            self.cache[key] = loader.load_playbook(key, loader.cache_dir(self.root))
        return self.cache[key]


def at(loc: Loc, message: str, code: str, pointer: str | None = None) -> Problem:
    return Problem(
        loc.file, loc.line, loc.col, loc.pointer if pointer is None else pointer, message, code
    )


def doc_at(doc: Document, path: DataPath, message: str, code: str, *, key: bool = False) -> Problem:
    where = doc.position(path, key=key)
    return Problem(doc.path, where.line, where.col, format_path(path), message, code)


def suggest(name: str, options: Iterable[str]) -> str:
    hint = difflib.get_close_matches(name, sorted(options), n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""


def get_path(data: Any, path: DataPath) -> Any:
    for part in path:
        data = data[part]
    return data


# --- playbooks ----------------------------------------------------------------


def sql_file_path(root: Path, name: str) -> Path:
    return (root / "sql" / name).resolve()


def read_sql_file(root: Path, name: str) -> str | None:
    """The text of a `sql_file` inside the project's sql/ folder, or None if it
    is missing, unreadable or outside (the `sql_file` check reports those)."""
    target = sql_file_path(root, name)
    if not target.is_relative_to((root / "sql").resolve()) or not target.is_file():
        return None
    try:
        return target.read_text("utf-8", errors="replace")
    except OSError:
        return None


def registered_names(pb: Playbook, ctx: Context, seen: frozenset[Path] = frozenset()) -> set[str]:
    """Names a playbook defines for what runs after it (registers, set)."""
    names: set[str] = set()
    seen = seen | {pb.path}
    for step in pb.walk():
        if step.register:
            names.add(step.register)
        if step.kind == "set":
            names.update(step.body)
        if step.kind == "include":
            included, _ = ctx.load((pb.path.parent / step.body).resolve())
            if included is not None and included.path not in seen:
                names |= registered_names(included, ctx, seen)
    return names
