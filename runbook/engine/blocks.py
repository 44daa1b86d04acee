"""Steps that hold steps: `include` (another playbook's steps, with its vars) and
`transaction` (steps in one database transaction, a savepoint each)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import psycopg

from runbook import variables
from runbook.engine import action
from runbook.engine.ports import Steps
from runbook.errors import RunbookError
from runbook.outcome import Outcome, Status
from runbook.plan import PlannedStep


def run_include(
    run: Steps, ps: PlannedStep, layers: tuple[dict[str, Any], ...], scope: dict[str, Any]
) -> None:
    included = ps.children[0].playbook if ps.children else ps.playbook
    secrets: set[str] = set()
    layer = variables.resolve_all(included.vars, f"playbook {included.name}", secrets)
    layer.update({k: scope[k] for k in ps.step.vars})
    run.redactor.add(secrets)
    seq = run.recorder.step_started(ps, undoes=run.state.undoing)
    run.reporter.step_started(ps)
    started = time.perf_counter()
    run.run_steps(ps.children, (*layers, layer))
    _close_group(run, ps, seq, started, f"{len(ps.children)} step(s) of {included.name}", scope)


def run_transaction(
    run: Steps, ps: PlannedStep, layers: tuple[dict[str, Any], ...], scope: dict[str, Any]
) -> None:
    nested = run.session.in_transaction  # a rehearsal is one outer transaction
    savepoint = f"rb_block_{abs(ps.index)}"
    started = time.perf_counter()
    extra: dict[str, Any] = {}
    try:
        if nested:
            run.session.savepoint(savepoint)
        else:
            extra = action.begin_tracked(run, ps)
    except (psycopg.Error, RunbookError) as exc:
        run.fail_before_start(ps, exc)
        return
    seq = run.recorder.step_started(ps, undoes=run.state.undoing, extra=extra)
    run.reporter.step_started(ps)
    state = run.state
    first_completed = len(state.completed)
    state.pending = []
    run.run_steps(ps.children, layers, in_block=True)
    inner = [o for c in ps.children for o in [state.outcomes.get(c.index)] if o is not None]
    try:
        if state.stopped():
            run.session.rollback_to(savepoint) if nested else run.session.rollback()
            _undo_block(run, inner, first_completed)
        else:
            run.session.release(savepoint) if nested else run.session.commit()
            committed = [
                (seq_, {"status": Status.OK.value, "reason": ""}) for seq_, _ in state.pending
            ]
            run.recorder.steps_updated(committed, "transaction.commit")
    except (psycopg.Error, RunbookError) as exc:
        with contextlib.suppress(psycopg.Error, RunbookError):
            run.session.rollback()
        _undo_block(run, inner, first_completed)
        run.end(ps, seq, run.failure(ps, exc, started, 1))
        return
    finally:
        state.pending = []
    _close_group(run, ps, seq, started, f"{len(inner)} step(s) in one transaction", scope)


def _undo_block(run: Steps, inner: list[Outcome], first_completed: int) -> None:
    """A block rolled back: the steps it had done are rolled_back, not done."""
    changes = []
    state = run.state
    for seq, outcome in state.pending:
        outcome.status = Status.ROLLED_BACK
        outcome.reason = "the transaction was rolled back"
        changes.append((seq, {"status": outcome.status.value, "reason": outcome.reason}))
    del state.completed[first_completed:]
    run.recorder.steps_updated(changes, "transaction.rollback")
    for outcome in inner:
        if outcome.status is Status.ROLLED_BACK:
            run.reporter.step_finished(outcome)  # shown again, now rolled back


def _close_group(
    run: Steps, ps: PlannedStep, seq: int, started: float, note: str, scope: dict[str, Any]
) -> None:
    outcomes = run.state.outcomes
    inner = [outcomes[c.index] for c in ps.children if c.index in outcomes]
    bad = next(
        (o for o in inner if o.status in (Status.FAILED, Status.GATE_FAILED, Status.UNKNOWN)),
        None,
    )
    outcome = Outcome(
        ps.index,
        ps.number,
        ps.name,
        ps.kind,
        bad.status if bad else Status.OK,
        reason=f"step {bad.number} {bad.status.value}" if bad else "",
        note=note,
        key=ps.step.key,
        duration_ms=(time.perf_counter() - started) * 1000,
        severity=bad.severity if bad else None,
    )
    run.end(ps, seq, outcome, decide=False)
    if outcome.status is Status.OK and run.state.undoing is None:
        run.done(ps, scope, seq)
