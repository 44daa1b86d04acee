"""`runbook history` and `runbook show`: reading the journal."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from runbook.clock import Clock, iso
from runbook.errors import UsageError
from runbook.journal import reconcile
from runbook.journal.records import FireRecord, RunRecord
from runbook.journal.store import JournalStore
from runbook.outcome import GateOutcome, Outcome, RunOutcome
from runbook.service import load_inventory, open_journal

_SINCE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def journal_for(inventory: Path | None) -> JournalStore:
    journal = open_journal(load_inventory(inventory, Path.cwd()))
    reconcile.mark_dead_runs(journal, Clock())
    return journal


def since_instant(since: str, clock: Clock) -> str:
    """`--since 7d`: the ISO instant that long before the clock's now."""
    match = _SINCE.match(since.strip())
    if not match:
        raise UsageError(f"--since {since!r}: expected a number and m, h, d or w (for example 7d)")
    delta = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    return iso(clock.now() - delta)


def runs(
    inventory: Path | None,
    playbook: str | None = None,
    target: str | None = None,
    status: str | None = None,
    since: str | None = None,
    limit: int = 50,
) -> list[RunRecord]:
    after = since_instant(since, Clock()) if since else None
    journal = journal_for(inventory)
    try:
        return journal.runs(
            playbook=playbook or None,
            target=target or None,
            status=status or None,
            since=after,
            limit=limit,
        )
    finally:
        journal.close()


def fires(
    inventory: Path | None,
    playbook: str | None = None,
    target: str | None = None,
    status: str | None = None,
    limit: int = 50,
    since: str | None = None,
) -> list[FireRecord]:
    """The fire ledger, the latest slot first; `playbook` is a name or a path;
    `since` (7d): the slots of that long ago and later."""
    after = since_instant(since, Clock()) if since else None
    journal = journal_for(inventory)
    try:
        return journal.fires(
            playbook=playbook or None,
            target=target or None,
            status=status or None,
            since=after,
            limit=limit,
        )
    finally:
        journal.close()


def fire_lines(ledger: list[FireRecord]) -> list[str]:
    lines = []
    for f in ledger:
        slot = f.slot if f.count == 1 else f"{f.slot} .. {f.slot_last} ({f.count} slots)"
        run = f"run {f.run_id}" + (f" {f.run_status}" if f.run_status else "") if f.run_id else ""
        lines.append(
            f"{slot:<26} {f.playbook:<28} {f.target:<12} {f.status.value:<9} "
            f"{run}  {f.reason or ''}".rstrip()
        )
    return lines


def fleet(inventory: Path | None, fleet_id: str) -> list[RunRecord]:
    """The runs of a fleet run, each with its steps, by target."""
    journal = journal_for(inventory)
    try:
        found = [journal.run(r.id) for r in journal.fleet_runs(fleet_id)]
    finally:
        journal.close()
    return [r for r in found if r is not None]


def outcome_of(run: RunRecord) -> RunOutcome:
    """A recorded run as the run's own outcome: what its JUnit report is made of."""
    from runbook.clock import parse_iso

    took = 0.0
    if run.ended_at:
        took = (parse_iso(run.ended_at) - parse_iso(run.started_at)).total_seconds() * 1000
    steps = [
        Outcome(
            index=step.idx if step.idx is not None else step.seq,
            number=step.number or "",
            name=step.name or "",
            kind=step.kind or "",
            status=step.status,
            reason=step.reason or "",
            duration_ms=step.duration_ms or 0.0,
            severity=step.severity,
            error=step.error,
            sqlstate=step.sqlstate,
            rendered=step.rendered,
            gates=[
                GateOutcome(g["name"], g["passed"], g["severity"], g.get("message", ""))
                for g in step.gates or ()
            ],
            undoes=step.undoes,
        )
        for step in run.steps or ()
    ]
    return RunOutcome(
        run_id=run.id,
        playbook=run.playbook,
        target=run.target or "",
        mode=run.mode.value,
        status=run.status,
        steps=steps,
        severity=run.severity,
        started_at=run.started_at,
        ended_at=run.ended_at or "",
        duration_ms=took,
        reason=run.reason or "",
    )


RERUN = {"failed", "gate_failed", "unreachable", "interrupted", "rollback_failed"}


def failed_targets(inventory: Path | None, fleet_id: str, playbook: str) -> tuple[str, ...]:
    """`--rerun-failed`: the targets of a fleet run that failed or were unreachable."""
    runs = fleet(inventory, fleet_id)
    if not runs:
        raise UsageError(f"no fleet run {fleet_id!r} in the journal")
    names = {r.playbook for r in runs}
    if playbook not in names:
        raise UsageError(f"fleet run {fleet_id} ran {', '.join(sorted(names))}, not {playbook}")
    return tuple(r.target for r in runs if r.target and r.status.value in RERUN)


def matrix(runs: list[RunRecord]) -> list[str]:
    """Targets × steps: each cell the step's status, then severity and duration."""
    numbers: list[str] = []
    names: dict[str, str] = {}
    for run in runs:
        for step in run.steps or ():
            if step.phase == "main" and step.number and step.number not in names:
                numbers.append(step.number)
                names[step.number] = step.name or ""
    short = {"ok": "ok", "gate_failed": "GATE", "failed": "FAIL", "skipped": "-",
             "not_run": ".", "unknown": "?", "declined": "no", "running": "…"}  # fmt: skip
    from runbook.shown import safe

    width = max([len(safe(r.target or "")) for r in runs] + [6])
    head = f"{'target':<{width}}  {'status':<12} " + " ".join(f"{n:>4}" for n in numbers)
    from runbook.fleet.summary import counts_line

    lines = [counts_line([r.status for r in runs]), "", head + "  severity  duration"]
    for run in runs:
        cells = {s.number: short.get(s.status.value, s.status.value[:4]) for s in run.steps or ()}
        took = ""
        if run.ended_at:
            from runbook.clock import parse_iso

            took = f"{(parse_iso(run.ended_at) - parse_iso(run.started_at)).total_seconds():.1f}s"
        row = " ".join(f"{cells.get(n, ''):>4}" for n in numbers)
        lines.append(
            f"{safe(run.target or ''):<{width}}  {run.status.value:<12} {row}  "
            f"{run.severity or '-':<8}  {took}"
        )
    lines.append("")
    lines += [f"  step {n}: {safe(names[n])}" for n in numbers]
    # Why a target did not run at all (the budget, run_on, unreachable): once per reason.
    passed_over = {"not_run", "skipped", "unreachable"}
    why: dict[str, list[str]] = {}
    for run in runs:
        if run.status.value in passed_over and run.reason:
            why.setdefault(f"{run.status.value}: {safe(run.reason)}", []).append(
                safe(run.target or "")
            )
    for reason, targets in why.items():
        shown = ", ".join(targets[:5]) + (
            f" and {len(targets) - 5} more" if len(targets) > 5 else ""
        )
        lines.append(f"  {reason} ({shown})")
    return lines


def show(inventory: Path | None, run_id: str) -> RunRecord:
    journal = journal_for(inventory)
    try:
        run = journal.run(run_id)
    finally:
        journal.close()
    if run is None:
        raise UsageError(f"no run {run_id!r} in the journal (or the prefix is ambiguous)")
    return run
