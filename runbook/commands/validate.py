"""`runbook validate`: every problem of every file, at its line and column."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from runbook import checks
from runbook.errors import Problem
from runbook.load import inventory as inventory_file
from runbook.load import loader, project
from runbook.model import Inventory


@dataclass
class Report:
    files: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def validate(paths: list[Path], inventory_path: Path | None) -> Report:
    """Validate files and folders; the inventory (given or found) is checked too."""
    if not paths:
        found = project.find_inventory()
        root = found.parent if found else Path.cwd()
        paths = [p for p in (root / "playbooks", found) if p is not None and p.exists()]
    files = project.yaml_files(paths)
    inventory_path = inventory_path or project.find_inventory(files[0] if files else None)
    report = Report(files=files)
    report.problems += _empty(paths, files)
    inventory: Inventory | None = None
    if inventory_path is not None:
        inventory, problems = inventory_file.load_inventory(inventory_path)
        report.problems += problems
        if inventory is not None:
            report.problems += checks.check_inventory(inventory)
    root = (
        inventory.root
        if inventory
        else (inventory_path.parent.resolve() if inventory_path else Path.cwd())
    )
    ctx = checks.Context(inventory, root)
    for path in files:
        if not path.exists():
            report.problems.append(Problem(str(path), 1, 1, "", "no such file or folder", "io"))
            continue
        if inventory_path is not None and path.resolve() == inventory_path.resolve():
            continue
        if project.is_inventory_file(path):
            other, problems = inventory_file.load_inventory(path)
            report.problems += problems
            if other is not None:
                report.problems += checks.check_inventory(other)
            continue
        playbook, problems = ctx.load(path)
        report.problems += problems
        if playbook is not None:
            report.problems += checks.check_playbook(playbook, ctx)
        elif problems:
            # Every problem of every file: the steps whose shape is right are
            # checked for meaning too, the others' registered names assumed.
            partial = loader.load_partial(path, problems, loader.cache_dir(root))
            if partial is not None:
                report.problems += checks.check_playbook(partial[0], ctx, partial[1])
    report.problems = _unique(report.problems)
    return report


def _empty(paths: list[Path], files: list[Path]) -> list[Problem]:
    """Nothing to check is not "all valid": a folder with no YAML file in it,
    or no playbooks/ and no inventory at all, is a problem."""
    if not paths:
        message = "nothing to validate: no playbooks/ folder and no inventory.yaml here or above"
        return [Problem(".", 1, 1, "", message, "empty")]
    out = []
    for path in paths:
        if path.is_dir() and not any(f.resolve().is_relative_to(path.resolve()) for f in files):
            message = "no playbooks here: the folder holds no *.yaml or *.yml file"
            out.append(Problem(str(path), 1, 1, "", message, "empty"))
    return out


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    out = []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return sorted(out, key=lambda p: (p.path, p.line, p.col))
