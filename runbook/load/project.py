"""Finding the project: its inventory, its root folder, its bundled playbooks."""

from __future__ import annotations

import os
from pathlib import Path

INVENTORY_NAMES = ("inventory.yaml", "inventory.yml")


def find_inventory(start: Path | None = None) -> Path | None:
    """`$RUNBOOK_INVENTORY`, else the nearest inventory.yaml at or above `start`."""
    env = os.environ.get("RUNBOOK_INVENTORY")
    if env:
        return Path(env)
    # abspath, not resolve(): a symlinked playbooks folder still belongs to the
    # project it is linked into, not to the one it points at.
    here = Path(os.path.abspath(start or Path.cwd()))
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        for name in INVENTORY_NAMES:
            candidate = folder / name
            if candidate.is_file():
                return candidate
    return None


def is_inventory_file(path: Path) -> bool:
    stem = path.name.rsplit(".", 1)[0]
    return stem == "inventory" or stem.endswith(".inventory") or stem.endswith("-inventory")


def yaml_files(paths: list[Path]) -> list[Path]:
    """Files named, and *.yaml / *.yml files below folders named, in a stable order."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(
                sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
            )
        else:
            out.append(path)
    seen: set[Path] = set()
    unique = []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique
