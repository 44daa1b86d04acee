"""How a run ended: its status, reason, worst severity and Nagios status."""

from __future__ import annotations

import time

from runbook.clock import Clock, iso
from runbook.context import RunInfo
from runbook.engine.gates import GateCheck
from runbook.engine.ports import Options
from runbook.engine.state import RunState
from runbook.model import Scale
from runbook.outcome import RunOutcome, RunStatus, Status


def finish(
    state: RunState,
    info: RunInfo,
    options: Options,
    gates: GateCheck,
    *,
    journal: str,
    clock: Clock,
    started_at: str,
    started: float,
    unreachable: bool = False,
) -> RunOutcome:
    """The run's outcome: its status and reason, worst severity, Nagios status."""
    main = [o for o in state.ordered if o.undoes is None]
    statuses = {o.status for o in main}
    undone = any(o.undoes is not None for o in state.ordered) or options.undo_only
    if state.halt and state.halt.interrupted:
        status, reason = RunStatus.INTERRUPTED, "interrupted by the operator"
    elif Status.UNKNOWN in statuses:
        status, reason = RunStatus.FAILED, "a step's outcome is unknown"
    elif Status.DECLINED in statuses:
        status, reason = RunStatus.DECLINED, "a confirmation was declined"
    elif Status.AWAITING_APPROVAL in statuses:
        status, reason = RunStatus.AWAITING_APPROVAL, "parked awaiting an approval"
    elif Status.FAILED in statuses:
        status, reason = RunStatus.FAILED, "a step failed"
    elif Status.GATE_FAILED in statuses:
        status, reason = RunStatus.GATE_FAILED, "a gate failed"
    else:
        status, reason = RunStatus.OK, "all steps passed"
    if unreachable and status is RunStatus.FAILED:
        # It failed because the server was never reached (steps that need no
        # connection may have run): its own status, counted apart.
        status, reason = RunStatus.UNREACHABLE, "the target could not be reached"
    if state.halt:
        where = state.halt.outcome
        reason = f"{reason}: step {where.number} {where.name!r}: {where.error or where.reason}"
    if state.passed_over is not None:
        status, reason = state.passed_over
    if undone and not options.check:  # a dry run undid nothing
        status = RunStatus.ROLLBACK_FAILED if state.undo_failed else RunStatus.ROLLED_BACK
        if state.undo_interrupted:
            # Ctrl-C during the undo: interrupted (exit 130) as at any other
            # point; `resume` finishes the undo.
            status = RunStatus.INTERRUPTED
    if state.undo_summary:
        reason = (
            state.undo_summary if options.undo_only else f"{reason}; rollback: {state.undo_summary}"
        )
    severity = gates.worst(o.severity for o in main)
    ran = any(
        o.status in (Status.OK, Status.GATE_FAILED, Status.FAILED, Status.UNKNOWN)
        for o in state.ordered
    )
    if not ran and not undone and state.passed_over is None:
        reason = "no step ran"
    return RunOutcome(
        nagios=_nagios(options.scale, status, severity, ran),
        run_id=info.id,
        playbook=info.playbook,
        target=info.target,
        mode=options.mode,
        status=status,
        steps=state.ordered,
        severity=severity,
        started_at=started_at,
        ended_at=iso(clock.now()),
        duration_ms=(time.perf_counter() - started) * 1000,
        reason=reason,
        journal=journal,
    )


def _nagios(scale: Scale, status: RunStatus, severity: str | None, ran: bool) -> int:
    """Nagios plugin status: no check ran, or a step errored, is never OK: UNKNOWN;
    a server `run_on` passes over is OK (it is not the server to check)."""
    if status is RunStatus.SKIPPED:
        return 0
    if not ran or status in (
        RunStatus.FAILED,
        RunStatus.INTERRUPTED,
        RunStatus.ROLLBACK_FAILED,
        RunStatus.DECLINED,
        RunStatus.AWAITING_APPROVAL,
        RunStatus.UNREACHABLE,
    ):
        return 3
    level = scale.get(severity) if severity else None
    if level is not None:
        return level.nagios
    return 2 if status is RunStatus.GATE_FAILED else 0
