"""One action step: attempts with retries/until, savepoints, tracked transactions,
gates, and its Outcome.

A writing SQL step outside a transaction block runs in a transaction of its own
that also writes the step's marker row in the target (`runbook.pg.marker`), whose
token is recorded before the statement runs; after a crash, `runbook resume`
asks whether that row exists, which a crash of either side cannot fake.
Inside a block, or for retries, each attempt is a savepoint.

A step records its own start (before it runs, so a crash leaves a trace) and
returns how it ended (`Ended`); the core records that and decides what follows.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

from runbook.actions import REGISTRY
from runbook.clock import iso
from runbook.context import StepContext
from runbook.engine import failures, outside
from runbook.engine.ports import Run
from runbook.errors import AwaitingApproval, Declined, RunbookError, StepError, TemplateError
from runbook.outcome import GateOutcome, Outcome, Status
from runbook.plan import PlannedStep
from runbook.results import Result, SkippedResult, ValueResult
from runbook.sqltemplate import template

# In --check (and a rehearsal) these are shown, not run: they reach outside the
# database, or a person.
OUTSIDE = frozenset({"shell", "http", "confirm", "notify", "escalate"})


@dataclass
class Ran:
    """The step ran: its start is recorded as `seq`; `registered` is what it may register."""

    seq: int
    outcome: Outcome
    registered: Any
    durable: bool


@dataclass
class Shown:
    """Shown, not run (--check, a rehearsal): recorded once, as skipped."""

    outcome: Outcome


@dataclass
class Refused:
    """It could not start: its transaction would not open, its preview failed."""

    error: BaseException


@dataclass
class Skipped:
    """Not run, for this reason (e.g. not rehearsable)."""

    reason: str


Ended = Ran | Shown | Refused | Skipped


def context(run: Run, ps: PlannedStep, scope: dict[str, Any]) -> StepContext:
    step, pb, o = ps.step, ps.playbook, run.options
    lock_timeout = step.options.get("lock_timeout")
    return StepContext(
        planned=ps,
        scope=scope,
        session=run.session,
        run=run.info,
        root=o.root,
        timeout=step.timeout or pb.timeout or o.timeout,
        lock_timeout=_seconds(lock_timeout) if lock_timeout is not None else pb.lock_timeout,
        clock=run.clock,
        assume_yes=o.assume_yes,
        prompter=o.prompter,
        notifier=o.notifier,
        session_env=o.session_env,
        client_tools=o.client_tools,
        scale=o.scale,
    )


def shown_in_drill(ps: PlannedStep) -> bool:
    """In a drill, shell and http steps would reach real systems: shown unless
    the step says `drill: run`; any step that says `drill: show` is shown."""
    said = ps.step.options.get("drill")
    return said == "show" or (ps.kind in ("shell", "http") and said != "run")


def _seconds(value: Any) -> float:
    from runbook.model import seconds

    return seconds(value) or 0.0


def run_action(
    run: Run,
    ps: PlannedStep,
    scope: dict[str, Any],
    in_block: bool,
    identity: dict[str, Any] | None = None,
) -> Ended:
    """Run one action step (`identity`: more columns of its record: a loop's
    iteration and item)."""
    step = ps.step
    action = REGISTRY[ps.kind]
    o = run.options
    ctx = context(run, ps, scope)
    writes = action.may_write(step)
    if (o.check and (writes or ps.kind in OUTSIDE)) or (o.rehearse and ps.kind in OUTSIDE):
        why = "--check" if o.check else "rehearsal"
        return _preview(run, ps, ctx, action.preview, f"{why}: shown, not run")
    if o.approve is not None and run.state.undoing is None:
        try:
            o.approve(ps, lambda: str(action.preview(ctx)))
        except (AwaitingApproval, Declined, TemplateError, StepError, psycopg.Error) as exc:
            return Refused(exc)
    if o.mode == "drill" and shown_in_drill(ps):
        return _preview(
            run, ps, ctx, action.preview, "drill: shown, not run (`drill: run` runs it in a drill)"
        )
    if o.step_by_step is not None and run.state.undoing is None and not o.step_by_step(ps):
        return Skipped("skipped by the operator (--step)")
    if not o.notify and ps.kind in ("notify", "escalate"):
        # A monitoring system running the check does its own alerting.
        return Skipped("notifications off (--no-notify)")
    if o.rehearse and step.options.get("autocommit"):
        return Skipped(
            "not rehearsed: an autocommit step cannot run inside the rehearsal's transaction"
        )
    tracked = (
        not in_block
        and not o.rehearse
        and writes
        and ps.kind in outside.SQL_KINDS
        and not step.options.get("autocommit")
    )
    extra: dict[str, Any] = {}
    if tracked:
        try:
            extra = begin_tracked(run, ps)
        except (psycopg.Error, RunbookError) as exc:
            return Refused(exc)
    elif writes and outside.non_transactional(ps):
        # If runbook dies during it, the journal says its outcome is unknown.
        extra = {"outside": True}
    if identity:
        extra = {**extra, **identity}
    # A step that may change something starts only once its record is on disk.
    durable = in_block or writes
    seq = run.recorder.step_started(ps, undoes=run.state.undoing, extra=extra, durable=durable)
    run.reporter.step_started(ps)
    if ps.kind in outside.SQL_KINDS and step.options.get("autocommit"):
        ctx.on_statement = outside.progress(run, seq)
    started = time.perf_counter()
    result, error, attempts, history = _attempts(
        run, ps, ctx, scope, savepoints=in_block or tracked
    )
    if tracked:
        error = _finish_transaction(run, error)
    # Secrets the step learned (a {from_env} header …) are masked in its own outcome too.
    run.redactor.add(ctx.secrets)
    outcome = _outcome(run, ps, ctx, result, error, started, attempts)
    if ctx.statements > 1:
        outside.count_statements(outcome, ctx.statements_done, ctx.statements)
    outside.mark_unknown(outcome, ps, error)
    outcome.history = history if attempts > 1 else []
    registered = result if error is None else getattr(error, "result", None)
    return Ran(seq, outcome, registered, durable)


def begin_tracked(run: Run, ps: PlannedStep) -> dict[str, Any]:
    """Open the step's (or block's) own transaction with its marker in the target:
    what the journal keeps so that resume can tell whether it committed."""
    return run.session.begin_tracked(uuid.uuid4().hex, run.info.id, f"{ps.number} {ps.name}")


def _finish_transaction(run: Run, error: BaseException | None) -> BaseException | None:
    """Commit the step's own transaction (or roll it back); a failed commit is the step's error."""
    if error is not None:
        with contextlib.suppress(psycopg.Error, RunbookError):
            run.session.rollback()
        return error
    try:
        run.session.commit()
    except (psycopg.Error, RunbookError) as exc:
        with contextlib.suppress(psycopg.Error, RunbookError):
            run.session.rollback()
        return exc
    return None


def _attempts(
    run: Run, ps: PlannedStep, ctx: StepContext, scope: dict[str, Any], savepoints: bool
) -> tuple[Result | None, BaseException | None, int, list[dict[str, Any]]]:
    step = ps.step
    action = REGISTRY[ps.kind]
    result: Result | None = None
    error: BaseException | None = None
    history: list[dict[str, Any]] = []
    delay = step.delay
    attempts = 0
    savepoint = f"rb_step_{abs(ps.index)}"
    while True:
        attempts += 1
        attempt_started = time.perf_counter()
        try:
            if savepoints:
                run.session.savepoint(savepoint)
            result = action.run(ctx)
            if savepoints:
                run.session.release(savepoint)
            if step.until is None or _until(step.until, {**scope, **registered_view(ps, result)}):
                return result, None, attempts, history
            error = StepError(
                f"until: {_shown(step.until)} is still false after {attempts} attempt(s)",
                result=result,
            )
        except KeyboardInterrupt as exc:
            return result, exc, attempts, history
        except Exception as exc:
            error = exc
            if savepoints:
                with contextlib.suppress(psycopg.Error, RunbookError):
                    run.session.rollback_to(savepoint)
        text, sqlstate = failures.error_text(error, run.info.playbook_kind, run.info.target)
        history.append(
            {
                "attempt": attempts,
                "at": iso(run.clock.now()),
                "error": text,
                "sqlstate": sqlstate,
                "duration_ms": round((time.perf_counter() - attempt_started) * 1000, 3),
            }
        )
        if attempts > step.retries:
            return result, error, attempts, history
        run.clock.sleep(delay)
        delay *= step.backoff


def _until(until: tuple[str, ...] | bool, scope: dict[str, Any]) -> bool:
    return until if isinstance(until, bool) else template.evaluate_all(until, scope)


def _shown(conditions: tuple[str, ...] | bool | None) -> str:
    return str(conditions) if not isinstance(conditions, tuple) else " and ".join(conditions)


def registered_view(ps: PlannedStep, result: Result) -> dict[str, Any]:
    view: dict[str, Any] = {"result": result}
    if ps.step.register:
        view[ps.step.register] = result
    return view


def _note(result: Result) -> str:
    rows = getattr(result, "rows", None)
    if rows is not None and getattr(result, "columns", None):
        return f"{len(rows)} row(s)"
    rowcount = getattr(result, "rowcount", None)
    return f"{rowcount} row(s) affected" if rowcount else ""


def _failed(
    run: Run,
    ps: PlannedStep,
    ctx: StepContext,
    error: BaseException,
    started: float,
    attempts: int,
    result: Any,
) -> Outcome:
    """A failed step's outcome, with the SQL it ran and what it got back, if anything."""
    outcome = failures.failure(
        ps, error, started, attempts, run.info.playbook_kind, run.info.target
    )
    outcome.rendered = ";\n".join(ctx.rendered) or None
    outcome.params = list(ctx.params) or None
    outcome.shown_rows = ps.step.options.get("max_rows")
    if isinstance(result, Result):
        outcome.result = result.serialize(_sample(run, ps))
    return failures.redacted(outcome, run.redactor)


def _sample(run: Run, ps: PlannedStep) -> int:
    """How many rows of a result its outcome carries (shown, and in --format
    json): the step's max_rows, else the journal's row_sample. The journal keeps
    at most row_sample of them (runbook.journal.recorder)."""
    max_rows = ps.step.options.get("max_rows")
    return run.options.row_sample if max_rows is None else int(max_rows)


def _outcome(
    run: Run,
    ps: PlannedStep,
    ctx: StepContext,
    result: Result | None,
    error: BaseException | None,
    started: float,
    attempts: int,
) -> Outcome:
    if error is not None:
        failed_result = getattr(error, "result", None)
        return _failed(run, ps, ctx, error, started, attempts, failed_result)
    assert result is not None
    register(run, ps, result)
    step = ps.step
    gates: list[GateOutcome] = []
    failing: GateOutcome | None = None
    failed = 0
    if step.gates or ps.kind == "classify":
        # ctx.scope is this step's (the run's own dict, lent to it, when the step
        # is outside includes): `result` is taken out again when the step ends.
        ctx.scope["result"] = result
        if step.register:
            ctx.scope[step.register] = result
        try:
            gates = run.gates.evaluate(ps, ctx.scope, result, ctx, run.runtime)
        except (TemplateError, StepError) as exc:
            # A gate that cannot be evaluated is a failed step, not a passed gate.
            return _failed(run, ps, ctx, exc, started, attempts, result)
        # The worst failing gate speaks for the step (the first of equals).
        rank = run.gates.rank
        for gate in gates:
            if not gate.passed:
                failed += 1
                if failing is None or rank(gate.severity) > rank(failing.severity):
                    failing = gate
    rendered = ctx.rendered
    outcome = Outcome(
        ps.index,
        ps.number,
        step.name,
        step.kind,
        Status.GATE_FAILED if failing else Status.OK,
        reason=_reason(failing, failed),
        duration_ms=(time.perf_counter() - started) * 1000,
        severity=failing.severity if failing else ctx.severity,
        rendered=(rendered[0] if len(rendered) == 1 else ";\n".join(rendered)) or None,
        params=ctx.params or None,  # a list of this step's own
        rowcount=getattr(result, "rowcount", None),
        result=result.serialize(_sample(run, ps)),
        shown_rows=step.options.get("max_rows"),
        notices=list(getattr(result, "notices", ())),
        gates=gates,
        attempts=attempts,
        key=step.key,
        note=ctx.note or _note(result),
    )
    return failures.redacted(outcome, run.redactor)


def register(run: Run, ps: PlannedStep, result: Result) -> None:
    if ps.kind == "set" and isinstance(result, ValueResult):
        run.runtime.update(result.values)
    if ps.step.register:
        run.runtime[ps.step.register] = result


def _preview(run: Run, ps: PlannedStep, ctx: StepContext, preview: Any, reason: str) -> Ended:
    started = time.perf_counter()
    try:
        shown = preview(ctx)
    except (TemplateError, StepError, RunbookError, psycopg.Error) as exc:
        return Refused(exc)
    outcome = Outcome(
        ps.index,
        ps.number,
        ps.name,
        ps.kind,
        Status.SKIPPED,
        reason=reason,
        rendered=shown,
        duration_ms=(time.perf_counter() - started) * 1000,
        key=ps.step.key,
    )
    if ps.step.register:
        run.runtime[ps.step.register] = SkippedResult(reason)
    return Shown(failures.redacted(outcome, run.redactor))


def _reason(failing: GateOutcome | None, count: int) -> str:
    if failing is None:
        return ""
    more = f" (and {count - 1} more gate(s) failed)" if count > 1 else ""
    return failing.message + more
