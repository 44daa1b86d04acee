"""One drill, from the copy to the measured result, journaled.

The copy is made and marked; the injects (the drill playbook's steps) break
it; the clock starts; the procedure runs on the copy as it would on the
target (its questions asked of the people taking part, its notifications
labelled [DRILL] and sent only to the policy's drill route); then the
recovery playbook, if any. Each is an ordinary run in the journal (mode
`drill`, the drill's id on it). The drill's own record says what was copied,
who took part, which runs were its, and how each objective went. The copy is
dropped at the end, whatever happened, unless kept (`--keep`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from runbook import approval, service
from runbook import plan as run_plan
from runbook.clock import Clock, iso, parse_iso
from runbook.context import Prompter
from runbook.drill import copy as copies
from runbook.drill import notify
from runbook.drill.objectives import answers, measure, step_results
from runbook.drill.plan import DrillPlan, load
from runbook.drill.reconcile import dead_drills
from runbook.engine import Reporter
from runbook.errors import ExitCode, UsageError
from runbook.journal.recorder import process_started
from runbook.journal.records import DrillRecord, RunRecord
from runbook.journal.store import JournalStore
from runbook.model import Target
from runbook.outcome import RunOutcome, RunStatus

Event = tuple[str, str | None, str, dict[str, Any]]


@dataclass
class DrillOutcome:
    record: DrillRecord
    runs: list[RunOutcome] = field(default_factory=list)
    exit_code: int = 0


@dataclass
class Drill:
    """What one `runbook drill run` was asked to do."""

    path: Path
    inventory: Path | None = None
    target: str | None = None
    participants: tuple[tuple[str, str], ...] = ()  # (name, role)
    keep: bool = False
    yes: bool = False  # the procedure's questions answered yes (no people at a terminal)
    extra: tuple[str, ...] = ()  # -e: variables for the procedure and the recovery
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


def run(
    drill: Drill,
    make_reporter: Callable[[], Reporter],
    prompter: Prompter | None,
    ready: Callable[[str], None] | None = None,
) -> DrillOutcome:
    """Run the drill; `ready` is told when the injects are in (an attended drill
    waits there for its responders)."""
    plan = load(drill.path, drill.inventory)
    target = _one_target(plan, drill.target)
    _check_ahead(drill, plan, target)
    root = plan.inventory.root
    clock = Clock.from_environment()
    journal = service.open_journal(plan.inventory)
    try:
        dead_drills(journal, plan.inventory, clock)
        return _run(drill, plan, target, journal, clock, root, make_reporter, prompter, ready)
    finally:
        journal.close()


def _check_ahead(drill: Drill, plan: DrillPlan, target: Target) -> None:
    """What each run of the drill needs (its variables, above all) is checked
    before anything is copied: a drill does not stop half-way for a typo."""
    stages = [p for p in (plan.procedure, plan.recovery) if p is not None]
    for playbook in stages:
        service.prepare(
            service.RunSpec(
                playbook=playbook.path,
                inventory=drill.inventory,
                targets=(target.name,),
                extra=drill.extra,
                drill={"id": drill.id, "role": "check"},
            )
        )


def _one_target(plan: DrillPlan, given: str | None) -> Target:
    found = run_plan.resolve_targets(plan.playbook, plan.inventory, (given,) if given else ())
    if len(found) != 1:
        names = ", ".join(t.name for t in found)
        raise UsageError(f"a drill copies one target; -t names one (this would be {names})")
    return found[0]


def _run(
    drill: Drill,
    plan: DrillPlan,
    target: Target,
    journal: JournalStore,
    clock: Clock,
    root: Path,
    make_reporter: Callable[[], Reporter],
    prompter: Prompter | None,
    ready: Callable[[str], None] | None,
) -> DrillOutcome:
    dsn, env = copies.source(target, root)
    record = _started(drill, plan, target, clock)
    journal.append([_change("insert", record, clock, "drill.start")])
    try:
        copy, fell_back = copies.make(dsn, drill.id, target.name, plan.copy, root)
    except Exception as exc:
        _finish(journal, clock, drill.id, status="failed", reason=f"no copy: {exc}")
        raise
    why = f"copied by dump: the template copy failed ({fell_back})" if fell_back else None
    journal.append(
        [
            _change(
                "update",
                {"id": drill.id, "copy_method": copy.method, "status": "running", "reason": why},
                clock,
                "drill.copied",
            )
        ]
    )
    outcome = DrillOutcome(record=record)
    status, reason, inject_at = "failed", None, None
    run_ids: list[dict[str, Any]] = []
    rpo = _rpo(plan, copy, dsn, env, root, clock)
    try:
        injected = _stage(drill, plan.drill.path if plan.drill else None, target, copy, "inject",
                          make_reporter, None, True)  # fmt: skip
        if injected is not None:
            outcome.runs.append(injected)
            run_ids.append({"role": "inject", "run_id": injected.run_id})
        if injected is not None and injected.status is not RunStatus.OK:
            reason = f"the injects did not apply ({injected.status.value})"
        else:
            inject_at = iso(clock.now())
            if ready is not None:
                ready(inject_at)
            status, reason = _respond(drill, plan, target, copy, make_reporter, prompter,
                                      outcome, run_ids)  # fmt: skip
    except KeyboardInterrupt:
        status, reason = "interrupted", "interrupted (Ctrl-C)"
        raise
    finally:
        results = _results(journal, plan, inject_at, run_ids)
        dropped = _drop(copy, dsn, root, drill.keep)
        outcome.record = _finish(
            journal, clock, drill.id, status=status, reason=_join(why, reason, dropped),
            run_ids=run_ids, objective_results=results, rpo_s=rpo, kept=int(drill.keep),
            inject_at=inject_at,
        )  # fmt: skip
    outcome.exit_code = _exit_code(outcome)
    return outcome


def _stage(
    drill: Drill,
    path: Path | None,
    target: Target,
    copy: copies.Copy,
    role: str,
    make_reporter: Callable[[], Reporter],
    prompter: Prompter | None,
    yes: bool,
    real: bool = False,
) -> RunOutcome | None:
    """One run of the drill on the copy (the injects, the procedure, the recovery)."""
    if path is None:
        return None
    spec = service.RunSpec(
        playbook=path,
        inventory=drill.inventory,
        targets=(target.name,),
        mode="drill",
        yes=yes,
        drill=copy.spec(drill.id, role),
        notify=role != "inject",
        extra=drill.extra if role != "inject" else (),
    )
    notifier = notify.notifier_for(drill.id, real) if role != "inject" else None
    outcomes = service.run(spec, make_reporter, prompter, notifier)
    return outcomes[0] if outcomes else None


def _respond(
    drill: Drill,
    plan: DrillPlan,
    target: Target,
    copy: copies.Copy,
    make_reporter: Callable[[], Reporter],
    prompter: Prompter | None,
    outcome: DrillOutcome,
    run_ids: list[dict[str, Any]],
) -> tuple[str, str | None]:
    """The procedure, then the recovery: the drill's status and why."""
    procedure = _stage(drill, plan.procedure.path, target, copy, "procedure", make_reporter,
                       prompter, drill.yes, plan.real_notifications)  # fmt: skip
    assert procedure is not None
    outcome.runs.append(procedure)
    run_ids.append({"role": "procedure", "run_id": procedure.run_id})
    if procedure.status is RunStatus.INTERRUPTED:
        return "interrupted", "the procedure was interrupted"
    if procedure.status is not RunStatus.OK:
        return "failed", f"the procedure ended {procedure.status.value}"
    if plan.recovery is None:
        return "completed", None
    recovery = _stage(drill, plan.recovery.path, target, copy, "recovery", make_reporter,
                      prompter, drill.yes, plan.real_notifications)  # fmt: skip
    assert recovery is not None
    outcome.runs.append(recovery)
    run_ids.append({"role": "recovery", "run_id": recovery.run_id})
    if recovery.status is not RunStatus.OK:
        return "failed", f"the recovery ended {recovery.status.value}"
    return "completed", None


def _results(
    journal: JournalStore, plan: DrillPlan, inject_at: str | None, run_ids: list[dict[str, Any]]
) -> dict[str, Any]:
    runs: dict[str, RunRecord | None] = {r["role"]: journal.run(r["run_id"]) for r in run_ids}
    procedure, recovery = runs.get("procedure"), runs.get("recovery")
    objectives = measure(plan, inject_at, procedure, recovery) if inject_at else []
    return {
        "severity": plan.severity,
        "objectives": [o.as_dict() for o in objectives],
        "steps": step_results(plan, procedure),
        "answers": answers(procedure),
    }


def _rpo(
    plan: DrillPlan, copy: copies.Copy, dsn: str, env: dict[str, str], root: Path, clock: Clock
) -> float | None:
    """How old the newest heartbeat on the copy was when it was made (seconds):
    what a restore of the copy's moment would lose."""
    if plan.heartbeat is None:
        return None
    *table, column = plan.heartbeat.split(".")
    copy_dsn, _ = service.drill_dsn(copy.spec("", ""), dsn, env, root)
    query = sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(column), sql.Identifier(*table))
    with contextlib.suppress(psycopg.Error), psycopg.connect(copy_dsn) as conn:
        row = conn.execute(query).fetchone()
        if row and row[0] is not None:
            newest = row[0] if hasattr(row[0], "tzinfo") else parse_iso(str(row[0]))
            return round((clock.now() - newest).total_seconds(), 3)
    return None


def _drop(copy: copies.Copy, dsn: str, root: Path, keep: bool) -> str | None:
    if keep:
        return f"the copy {copy.database} was kept (--keep): drop it when done"
    try:
        copies.drop(copy, dsn, root)
    except (psycopg.Error, copies.CopyError) as exc:
        return f"the copy {copy.database} could not be dropped: {exc}"
    return None


def _join(*parts: str | None) -> str | None:
    said = [p for p in parts if p]
    return "; ".join(said) or None


def _started(drill: Drill, plan: DrillPlan, target: Target, clock: Clock) -> DrillRecord:
    playbook = plan.playbook
    root = plan.inventory.root.resolve()
    path = playbook.path
    return DrillRecord(
        id=drill.id,
        playbook=playbook.name,
        playbook_path=str(path.relative_to(root)) if path.is_relative_to(root) else str(path),
        exercise=plan.procedure.name,
        target=target.name,
        copy_db=f"drill_{drill.id}",
        copy_method=plan.copy,
        operator=service.operator(),
        os_user=approval.os_user(),
        host=socket.gethostname(),
        pid=os.getpid(),
        pid_started=process_started(os.getpid()),
        participants=[{"name": n, "role": r} for n, r in drill.participants],
        started_at=iso(clock.now()),
        inject_at=None,
        ended_at=None,
        status="copying",
        run_ids=[],
        objective_results=None,
        rpo_s=None,
        kept=0,
        reason=None,
    )


def _change(op: str, row: DrillRecord | dict[str, Any], clock: Clock, kind: str) -> Event:
    data = row.as_dict() if isinstance(row, DrillRecord) else row
    return (iso(clock.now()), None, kind, {"table": "drills", "op": op, "row": data})


def _finish(journal: JournalStore, clock: Clock, drill_id: str, **values: Any) -> DrillRecord:
    row = {"id": drill_id, "ended_at": iso(clock.now()), **values}
    journal.append([_change("update", row, clock, "drill.end")])
    found = journal.drill(drill_id)
    assert found is not None
    return found


def _exit_code(outcome: DrillOutcome) -> int:
    """The worst of its runs; 1 when they all ran but an objective was missed."""
    code = service.exit_code(outcome.runs, "default")
    if code != 0:
        return code
    results = outcome.record.objective_results or {}
    missed = [o for o in results.get("objectives", []) if o["status"] in ("fail", "not reached")]
    missed += [s for s in results.get("steps", []) if s["status"] in ("fail", "not reached")]
    if outcome.record.status != "completed" or missed:
        return int(ExitCode.GATE_FAILED)
    return 0
