"""`runbook schedule list | explain | export`: the schedules of a project, read
from its playbooks, with their next fires; `list` adds what the fire ledger
says of each (the last fire, its result and run, overdue, failing, paused).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from runbook import plan
from runbook.clock import Clock, parse_iso
from runbook.errors import UsageError
from runbook.journal.records import PauseRecord
from runbook.journal.store import JournalStore
from runbook.load import loader, project
from runbook.schedule import export, ledger, slots, words
from runbook.schedule.cron import fixed_hours
from runbook.schedule.entries import Entry, scheduled
from runbook.schedule.entries import relative as _relative
from runbook.schedule.spec import Spec, compile_schedule
from runbook.service import load_checked, load_inventory, open_journal


def _now() -> dt.datetime:
    return Clock.from_environment().now()


def list_rows(inventory_path: Path | None, count: int = 3) -> list[dict[str, Any]]:
    """One row per scheduled playbook × target: words, next fires, and the ledger's last fire."""
    inventory, entries = scheduled(inventory_path)
    now = _now()
    journal = open_journal(inventory)
    try:
        pauses = journal.pauses()
        rows = []
        for e in entries:
            upcoming = slots.next_slots(e.spec, now, count)
            row: dict[str, Any] = {
                "playbook": e.playbook.name,
                "path": e.path,
                "target": e.target,
                "schedule": words.describe(e.spec),
                "timezone": e.spec.timezone,
                "next": [s.local.isoformat(timespec="minutes") for s in upcoming],
                "next_utc": [s.key for s in upcoming],
            }
            row.update(_last_fire(journal, e, pauses, now))
            rows.append(row)
    finally:
        journal.close()
    return rows


def _last_fire(
    journal: JournalStore, e: Entry, pauses: list[PauseRecord], now: dt.datetime
) -> dict[str, Any]:
    """The ledger's newest row for the pair, the run it started, and the flags."""
    head = journal.fire_head(e.path, e.spec.key, e.target)
    pause = ledger.pause_of(pauses, e.path, e.target)
    result = head.status.value if head is not None else None
    if head is not None and head.run_id is not None:
        run = journal.run(head.run_id)
        result = run.status.value if run is not None else head.run_status or "started"
    flags = []
    if pause is not None and pause.paused:
        flags.append("paused")
    due = slots.last_slot(e.spec, now)
    late = due is not None and (now - due.at).total_seconds() > e.spec.starting_deadline
    # Overdue: fired before, but a slot past its deadline is not in the ledger
    # (never fired at all shows as no last fire, not as overdue).
    if late and due is not None and head is not None and head.last < due.key and not flags:
        flags.append("overdue")
    if result not in (None, "ok", "running", "started", "blackout", "skipped", "queued"):
        flags.append("failing")
    return {
        "last_fire": head.slot if head is not None else None,
        "last_fire_local": (
            parse_iso(head.last).astimezone(e.spec.zone).isoformat(timespec="minutes")
            if head is not None
            else None
        ),
        "last_result": result,
        "last_reason": head.reason if head is not None else None,
        "last_run_id": head.run_id if head is not None else None,
        "flags": flags,
        "paused_reason": pause.reason if pause is not None and pause.paused else None,
    }


def render_list(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no scheduled playbooks"
    header = ("PLAYBOOK", "TARGET", "SCHEDULE", "NEXT FIRES", "LAST FIRE", "RESULT", "RUN", "FLAGS")
    table = [header] + [
        (
            r["playbook"],
            r["target"],
            r["schedule"],
            _fires(r["next"]),
            (r["last_fire_local"] or "-")[:16].replace("T", " "),
            r["last_result"] or "-",
            r["last_run_id"] or "-",
            ", ".join(r["flags"]) or "-",
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


def find_playbook(target: str, inventory_path: Path | None) -> Path:
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
    path = find_playbook(target, inventory_path)
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
