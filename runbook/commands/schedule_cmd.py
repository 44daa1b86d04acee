"""`runbook schedule list | explain | export`: the schedules of a project, read
from its playbooks, with their next fires. Nothing here reads a journal yet:
the last fire and its result come with the fire ledger.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook import plan
from runbook.clock import Clock
from runbook.errors import InvalidFiles, UsageError
from runbook.load import loader, project
from runbook.model import Inventory, Playbook
from runbook.schedule import export, slots, words
from runbook.schedule.cron import fixed_hours
from runbook.schedule.spec import Spec, compile_schedule
from runbook.service import load_checked, load_inventory


@dataclass(frozen=True)
class Entry:
    """One schedule of one playbook on one target."""

    playbook: Playbook
    spec: Spec
    target: str


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _entries_of(playbook: Playbook, inventory: Inventory) -> list[Entry]:
    out = []
    for schedule in playbook.schedules:
        spec = compile_schedule(playbook.name, schedule, inventory.scheduler_timezone)
        for target in plan.resolve_targets(playbook, inventory, schedule.targets):
            out.append(Entry(playbook, spec, target.name))
    return out


def scheduled(inventory_path: Path | None) -> tuple[Inventory, list[Entry]]:
    """Every (schedule, target) of the project's playbooks/ folder, checked."""
    inventory = load_inventory(inventory_path, Path.cwd())
    folder = inventory.root / "playbooks"
    entries: list[Entry] = []
    for path in project.yaml_files([folder] if folder.is_dir() else []):
        if project.is_inventory_file(path):
            continue
        # The schema alone first: only scheduled playbooks are checked in full.
        quick, problems = loader.load_playbook(path)
        if problems:
            raise InvalidFiles(problems)
        if quick is None or not quick.schedules:
            continue
        _, playbook, _ = load_checked(path, inventory.path)
        entries += _entries_of(playbook, inventory)
    return inventory, entries


def _now() -> dt.datetime:
    return Clock.from_environment().now()


def list_rows(inventory_path: Path | None, count: int = 3) -> list[dict[str, Any]]:
    """One row per scheduled playbook × target: words, next fires; the ledger's columns empty."""
    inventory, entries = scheduled(inventory_path)
    now = _now()
    rows = []
    for e in entries:
        upcoming = slots.next_slots(e.spec, now, count)
        rows.append(
            {
                "playbook": e.playbook.name,
                "path": _relative(e.playbook.path, inventory.root),
                "target": e.target,
                "schedule": words.describe(e.spec),
                "timezone": e.spec.timezone,
                "next": [s.local.isoformat(timespec="minutes") for s in upcoming],
                "next_utc": [s.key for s in upcoming],
                # Filled by the fire ledger (not built yet): null until then.
                "last_fire": None,
                "last_result": None,
                "last_run_id": None,
            }
        )
    return rows


def render_list(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no scheduled playbooks"
    header = ("PLAYBOOK", "TARGET", "SCHEDULE", "NEXT FIRES", "LAST FIRE", "RESULT", "RUN")
    table = [header] + [
        (
            r["playbook"],
            r["target"],
            r["schedule"],
            _fires(r["next"]),
            r["last_fire"] or "-",
            r["last_result"] or "-",
            r["last_run_id"] or "-",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in table
    )


def _fires(local: list[str]) -> str:
    """`2026-12-04 08:00, …`: local times; with their offsets when a wall time
    repeats (an hourly job in the hour that happens twice)."""
    short = [t[:16].replace("T", " ") for t in local]
    if len(set(short)) < len(short):
        short = [f"{s}{t[16:]}" for s, t in zip(short, local, strict=True)]
    return ", ".join(short)


def _find(target: str, inventory_path: Path | None) -> Path:
    path = Path(target)
    if path.exists():
        return path
    inventory = load_inventory(inventory_path, Path.cwd())
    folder = inventory.root / "playbooks"
    for candidate in project.yaml_files([folder] if folder.is_dir() else []):
        quick, _ = loader.load_playbook(candidate)
        if quick is not None and quick.name == target:
            return candidate
    raise UsageError(f"no playbook file or playbook named {target!r} (looked in {folder})")


def _marks(slot: slots.Slot, previous: dt.timedelta | None, spec: Spec) -> list[str]:
    out = []
    offset = slot.local.utcoffset()
    if previous is not None and offset != previous:
        out.append(f"clocks changed: UTC{_offset(previous)} → UTC{_offset(offset)}")
    if slot.shifted:
        out.append(
            "its local time does not exist that night: fires once, at the first minute after"
        )
    elif slot.repeated and spec.cron is not None and fixed_hours(spec.cron):
        out.append("this local time happens twice that night: fires once, at the first")
    elif slot.repeated:
        out.append("repeated local hour: elapsed time, so it fires in both")
    if slot.blackout:
        out.append(f"blacked out ({slot.blackout}): not run")
    return out


def _offset(delta: dt.timedelta | None) -> str:
    minutes = int((delta or dt.timedelta()).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def explain(target: str, inventory_path: Path | None, count: int) -> dict[str, Any]:
    """A playbook's schedules: words, policies, targets and the next `count` fires, marked."""
    if count < 1 or count > 10_000:
        raise UsageError(f"--next {count}: give 1 to 10000")
    path = _find(target, inventory_path)
    inventory, playbook, _ = load_checked(path, inventory_path)
    now = _now()
    schedules = []
    for schedule in playbook.schedules:
        spec = compile_schedule(playbook.name, schedule, inventory.scheduler_timezone)
        targets = [t.name for t in plan.resolve_targets(playbook, inventory, schedule.targets)]
        previous = now.astimezone(spec.zone).utcoffset()
        fires = []
        for slot in slots.next_slots(spec, now, count):
            fires.append(
                {
                    "local": slot.local.isoformat(),
                    "utc": slot.key,
                    "shifted": slot.shifted,
                    "repeated": slot.repeated,
                    "blackout": slot.blackout,
                    "marks": _marks(slot, previous, spec),
                }
            )
            previous = slot.local.utcoffset()
        schedules.append(
            {
                "schedule": words.describe(spec),
                "key": spec.key,
                "timezone": spec.timezone,
                "policies": words.details(spec),
                "targets": targets,
                "fires": fires,
            }
        )
    return {
        "playbook": playbook.name,
        "path": _relative(playbook.path, inventory.root),
        "now": now.isoformat(),
        "schedules": schedules,
    }


def render_explain(report: dict[str, Any]) -> str:
    if not report["schedules"]:
        return f"{report['playbook']} has no schedule"
    lines = []
    for s in report["schedules"]:
        lines.append(f"{report['playbook']}: {s['schedule']}")
        lines.append(f"  on {', '.join(s['targets'])}; {'; '.join(s['policies'])}")
        for fire in s["fires"]:
            local = fire["local"][:16].replace("T", " ") + " " + fire["local"][19:]
            marks = ("  ← " + "; ".join(fire["marks"])) if fire["marks"] else ""
            lines.append(f"  {local}  ({fire['utc'][:16].replace('T', ' ')}Z){marks}")
    return "\n".join(lines)


def _program() -> str:
    """This installation's `runbook`: the exported units must call the same one."""
    beside = Path(sys.executable).parent / "runbook"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("runbook") or "runbook"


def _jobs(inventory_path: Path | None) -> list[export.Job]:
    inventory, entries = scheduled(inventory_path)
    argv = (_program(), "run")
    return [
        export.Job(
            e.spec,
            e.target,
            (*argv, str(e.playbook.path), "-t", e.target, "-i", str(inventory.path)),
            inventory.root,
        )
        for e in entries
    ]


def export_cron(inventory_path: Path | None) -> str:
    return export.crontab(_jobs(inventory_path))


def export_systemd(inventory_path: Path | None, folder: Path) -> list[Path]:
    """Write the units into `folder` (created); the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in export.systemd_units(_jobs(inventory_path)).items():
        path = folder / name
        path.write_text(text)
        written.append(path)
    return written
