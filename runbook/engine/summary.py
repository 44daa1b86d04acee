"""How a run ended: its status, reason, worst severity and Nagios status."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from runbook.clock import iso
from runbook.outcome import RunOutcome, RunStatus, Status

if TYPE_CHECKING:
    from runbook.engine.core import Engine


def finish(engine: Engine, started_at: str, started: float) -> RunOutcome:
    """The run's outcome: its status and reason, worst severity, Nagios status."""
    main = [o for o in engine.ordered if o.undoes is None]
    statuses = {o.status for o in main}
    undone = any(o.undoes is not None for o in engine.ordered) or engine.options.undo_only
    if engine.halt and engine.halt.interrupted:
        status, reason = RunStatus.INTERRUPTED, "interrupted by the operator"
    elif Status.UNKNOWN in statuses:
        status, reason = RunStatus.FAILED, "a step's outcome is unknown"
    elif Status.DECLINED in statuses:
        status, reason = RunStatus.DECLINED, "a confirmation was declined"
    elif Status.FAILED in statuses:
        status, reason = RunStatus.FAILED, "a step failed"
    elif Status.GATE_FAILED in statuses:
        status, reason = RunStatus.GATE_FAILED, "a gate failed"
    else:
        status, reason = RunStatus.OK, "all steps passed"
    if engine.halt:
        where = engine.halt.outcome
        reason = f"{reason}: step {where.number} {where.name!r}: {where.error or where.reason}"
    if undone and not engine.options.check:  # a dry run undid nothing
        status = RunStatus.ROLLBACK_FAILED if engine.undo_failed else RunStatus.ROLLED_BACK
    if engine.undo_summary:
        reason = (
            engine.undo_summary
            if engine.options.undo_only
            else f"{reason}; rollback: {engine.undo_summary}"
        )
    severity = engine.gates.worst(o.severity for o in main)
    ran = any(
        o.status in (Status.OK, Status.GATE_FAILED, Status.FAILED, Status.UNKNOWN)
        for o in engine.ordered
    )
    if not ran and not undone:
        reason = "no step ran"
    return RunOutcome(
        nagios=_nagios(engine, status, severity, ran),
        run_id=engine.run_id,
        playbook=engine.plan.playbook.name,
        target=engine.plan.target.name,
        mode=engine.options.mode,
        status=status,
        steps=engine.ordered,
        severity=severity,
        started_at=started_at,
        ended_at=iso(engine.clock.now()),
        duration_ms=(time.perf_counter() - started) * 1000,
        reason=reason,
        journal=engine.recorder.journal.where,
    )


def _nagios(engine: Engine, status: RunStatus, severity: str | None, ran: bool) -> int:
    """Nagios plugin status: no check ran, or a step errored, is never OK: UNKNOWN."""
    if not ran or status in (
        RunStatus.FAILED,
        RunStatus.INTERRUPTED,
        RunStatus.ROLLBACK_FAILED,
        RunStatus.DECLINED,
    ):
        return 3
    level = engine.options.scale.get(severity) if severity else None
    if level is not None:
        return level.nagios
    return 2 if status is RunStatus.GATE_FAILED else 0
