"""Steps that hold steps: `include` (another playbook's steps, with its vars) and
`transaction` (steps in one database transaction, a savepoint each)."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

import psycopg

from runbook import variables
from runbook.engine import action
from runbook.errors import RunbookError
from runbook.outcome import Outcome, Status
from runbook.plan import PlannedStep

if TYPE_CHECKING:
    from runbook.engine.core import Engine


def run_include(
    engine: Engine, ps: PlannedStep, layers: tuple[dict[str, Any], ...], scope: dict[str, Any]
) -> None:
    included = ps.children[0].playbook if ps.children else ps.playbook
    secrets: set[str] = set()
    layer = variables.resolve_all(included.vars, f"playbook {included.name}", secrets)
    layer.update({k: scope[k] for k in ps.step.vars})
    engine.redactor.add(secrets)
    seq = engine.recorder.step_started(ps, undoes=engine.undoing)
    engine.reporter.step_started(ps)
    started = time.perf_counter()
    engine.run_steps(ps.children, (*layers, layer))
    _close_group(engine, ps, seq, started, f"{len(ps.children)} step(s) of {included.name}", scope)


def run_transaction(
    engine: Engine, ps: PlannedStep, layers: tuple[dict[str, Any], ...], scope: dict[str, Any]
) -> None:
    nested = engine.session.in_transaction  # a rehearsal is one outer transaction
    savepoint = f"rb_block_{abs(ps.index)}"
    started = time.perf_counter()
    extra: dict[str, Any] = {}
    try:
        if nested:
            engine.session.savepoint(savepoint)
        else:
            extra = action.begin_tracked(engine, ps)
    except (psycopg.Error, RunbookError) as exc:
        engine.fail_before_start(ps, exc)
        return
    seq = engine.recorder.step_started(ps, undoes=engine.undoing, extra=extra)
    engine.reporter.step_started(ps)
    first_completed = len(engine.completed)
    engine.pending = []
    engine.run_steps(ps.children, layers, in_block=True)
    inner = [o for c in ps.children for o in [engine.outcomes.get(c.index)] if o is not None]
    try:
        if engine.stopped():
            engine.session.rollback_to(savepoint) if nested else engine.session.rollback()
            _undo_block(engine, inner, first_completed)
        else:
            engine.session.release(savepoint) if nested else engine.session.commit()
            committed = [
                (seq_, {"status": Status.OK.value, "reason": ""}) for seq_, _ in engine.pending
            ]
            engine.recorder.steps_updated(committed, "transaction.commit")
    except (psycopg.Error, RunbookError) as exc:
        with contextlib.suppress(psycopg.Error, RunbookError):
            engine.session.rollback()
        _undo_block(engine, inner, first_completed)
        engine.end(ps, seq, engine.failure(ps, exc, started, 1))
        return
    finally:
        engine.pending = []
    _close_group(engine, ps, seq, started, f"{len(inner)} step(s) in one transaction", scope)


def _undo_block(engine: Engine, inner: list[Outcome], first_completed: int) -> None:
    """A block rolled back: the steps it had done are rolled_back, not done."""
    changes = []
    for seq, outcome in engine.pending:
        outcome.status = Status.ROLLED_BACK
        outcome.reason = "the transaction was rolled back"
        changes.append((seq, {"status": outcome.status.value, "reason": outcome.reason}))
    del engine.completed[first_completed:]
    engine.recorder.steps_updated(changes, "transaction.rollback")
    for outcome in inner:
        if outcome.status is Status.ROLLED_BACK:
            engine.reporter.step_finished(outcome)  # shown again, now rolled back


def _close_group(
    engine: Engine, ps: PlannedStep, seq: int, started: float, note: str, scope: dict[str, Any]
) -> None:
    inner = [engine.outcomes[c.index] for c in ps.children if c.index in engine.outcomes]
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
    engine.end(ps, seq, outcome, decide=False)
    if outcome.status is Status.OK and engine.undoing is None:
        engine.done(ps, scope, seq)
