"""The project's schedules: every (schedule, target) of the playbooks in its
`playbooks/` folder, checked, as the scheduler and `runbook schedule` read them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runbook import plan
from runbook.errors import InvalidFiles
from runbook.load import loader, project
from runbook.model import Inventory, Playbook
from runbook.schedule.spec import Spec, compile_schedule
from runbook.service import load_checked, load_inventory


@dataclass(frozen=True)
class Entry:
    """One schedule of one playbook on one target."""

    playbook: Playbook
    spec: Spec
    target: str
    path: str  # the playbook's path relative to the project's root: the ledger's key

    @property
    def pair(self) -> tuple[str, str, str]:
        """(playbook path, schedule key, target): what the ledger keys a pair by."""
        return (self.path, self.spec.key, self.target)


def relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def entries_of(playbook: Playbook, inventory: Inventory) -> list[Entry]:
    out = []
    where = relative(playbook.path.resolve(), inventory.root.resolve())
    for schedule in playbook.schedules:
        spec = compile_schedule(playbook.name, schedule, inventory.scheduler_timezone)
        for target in plan.resolve_targets(playbook, inventory, schedule.targets):
            out.append(Entry(playbook, spec, target.name, where))
    return out


def playbook_files(inventory: Inventory) -> list[Path]:
    folder = inventory.root / "playbooks"
    return [
        path
        for path in project.yaml_files([folder] if folder.is_dir() else [])
        if not project.is_inventory_file(path)
    ]


def scheduled(
    inventory_path: Path | None, near: Path | None = None
) -> tuple[Inventory, list[Entry]]:
    """Every (schedule, target) of the project's playbooks/ folder, checked."""
    inventory = load_inventory(inventory_path, near or Path.cwd())
    entries: list[Entry] = []
    for path in playbook_files(inventory):
        # The schema alone first: only scheduled playbooks are checked in full.
        quick, problems = loader.load_playbook(path)
        if problems:
            raise InvalidFiles(problems)
        if quick is None or not quick.schedules:
            continue
        _, playbook, _ = load_checked(path, inventory.path)
        entries += entries_of(playbook, inventory)
    return inventory, entries


def fingerprint(inventory: Inventory) -> tuple[tuple[str, int], ...]:
    """The inventory's and the playbooks' paths and modification times: a
    scheduler reads the project again when they change."""
    found = []
    for path in (inventory.path, *playbook_files(inventory)):
        try:
            found.append((str(path), path.stat().st_mtime_ns))
        except OSError:
            continue
    return tuple(sorted(found))
