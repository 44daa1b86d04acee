"""What every check needs: the project context and ways to place a Problem."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.errors import Problem
from runbook.load import loader, sqlfiles
from runbook.load.names import BUILTIN_VARS, shown
from runbook.load.yamlsrc import DataPath, Document, format_path
from runbook.model import Inventory, Loc, Playbook, Scale

__all__ = ["BUILTIN_VARS", "Context"]


@dataclass
class Context:
    """What the checks of one playbook know about the project around it.

    `load` is for the playbooks the user named; `include` for the playbooks
    they include, which must stay inside the project (or inside the folder of a
    playbook the user named): what lies outside is never read."""

    inventory: Inventory | None
    root: Path
    cache: dict[Path, tuple[Playbook | None, list[Problem]]] = field(default_factory=dict)
    # Folders of the playbooks the user named: their includes may live there.
    tops: set[Path] = field(default_factory=set)
    # Include targets refused unread, and why.
    refused: dict[Path, str] = field(default_factory=dict)

    @property
    def scale(self) -> Scale:
        return self.inventory.scale if self.inventory else Scale.default()

    def load(self, path: Path) -> tuple[Playbook | None, list[Problem]]:
        key = path.resolve()
        if key not in self.cache:
            self.tops.add(key.parent)
        return self._read(key)

    def _read(self, key: Path) -> tuple[Playbook | None, list[Problem]]:
        if key not in self.cache:
            self.cache[key] = loader.load_playbook(key, loader.cache_dir(self.root))
        return self.cache[key]

    def include(self, pb: Playbook, written: str) -> tuple[Path, str | None]:
        """Where `include: written` in `pb` leads, symlinks resolved, and why it
        may not be included (None if it may; then `load` reads it). A refused
        target is remembered unread, so every later `load` of it finds nothing."""
        target = (pb.path.parent / written.replace("\0", "")).resolve()
        why = self.refused.get(target)
        if why is None and target not in self.cache:
            why = self._include_refusal(written, target)
            if why is not None:
                self.refused[target] = why
                self.cache[target] = (None, [])
        return target, why

    def _include_refusal(self, written: str, target: Path) -> str | None:
        if "\0" in written:
            return f"include {shown(written)} holds a NUL character"
        inside = (self.root.resolve(), *self.tops)
        if not any(target.is_relative_to(folder) for folder in inside):
            return (
                f"include {shown(written)} points outside the project (symlinks resolved); "
                "includes stay inside the project folder"
            )
        return None

    def load_include(self, pb: Playbook, written: str) -> Playbook | None:
        """The playbook `include: written` in `pb` names, if it may be included and is valid."""
        target, why = self.include(pb, written)
        return None if why else self._read(target)[0]


def includes_of(ctx: Context, playbook: Playbook) -> dict[Path, Playbook]:
    """Every playbook `playbook` includes, at any depth, by resolved path: read
    through `ctx`, so inside the project and from the files the checks saw."""
    found: dict[Path, Playbook] = {}
    pending = [playbook]
    while pending:
        pb = pending.pop()
        for step in pb.walk():
            if step.kind != "include" or not isinstance(step.body, str):
                continue
            target, why = ctx.include(pb, step.body)
            included = None if why or target in found else ctx.load_include(pb, step.body)
            if included is not None:
                found[target] = included
                pending.append(included)
    return found


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
    return sqlfiles.path_of(root, name)


def read_sql_file(root: Path, name: str) -> str | None:
    """The text of a `sql_file` inside the project's sql/ folder, or None if it
    cannot be used (the `sql_file` check reports why)."""
    return sqlfiles.read(root, name).text


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
            included = ctx.load_include(pb, step.body)
            if included is not None and included.path not in seen:
                names |= registered_names(included, ctx, seen)
    return names
