"""The step loop: run an action → an Outcome → gates → continue, halt or roll back.

This is the one place where exceptions become statuses. Every step is recorded
before it runs and again when it ends; steps that never ran are recorded as
skipped or not_run, so the journal shows every step of the plan.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psycopg

from runbook import template, variables
from runbook.actions import REGISTRY
from runbook.clock import Clock, iso
from runbook.context import Notifier, Prompter, RunInfo, StepContext
from runbook.db import Session, StepTimeout
from runbook.errors import RunbookError, StepError, TemplateError
from runbook.gates import GateCheck
from runbook.model import Scale
from runbook.outcome import GateOutcome, Outcome, RunOutcome, RunStatus, Status
from runbook.plan import Plan, PlannedStep
from runbook.recorder import Recorder, RunRecord
from runbook.redact import Redactor
from runbook.results import Result, SkippedResult, ValueResult

# Read-only in --check: these reach outside the database or a person.
_OUTSIDE = frozenset({"shell", "http", "confirm", "notify", "escalate"})


class Reporter(Protocol):
    def run_started(self, plan: Plan, run_id: str) -> None: ...
    def step_started(self, ps: PlannedStep) -> None: ...
    def step_finished(self, outcome: Outcome) -> None: ...
    def run_finished(self, outcome: RunOutcome) -> None: ...


@dataclass
class Options:
    mode: str = "run"
    check: bool = False
    rehearse: bool = False
    assume_yes: bool = False
    prompter: Prompter | None = None
    operator: str = "unknown"
    timeout: float = 300.0
    lock_timeout: float = 5.0
    row_sample: int = 20
    root: Path = field(default_factory=Path.cwd)
    scale: Scale = field(default_factory=Scale.default)
    notifier: Notifier | None = None
    session_env: dict[str, str] = field(default_factory=dict)
    parent_run: str | None = None


@dataclass
class _Halt:
    outcome: Outcome
    policy: str  # halt | rollback
    interrupted: bool = False


def _one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return " | ".join(lines[:4]) if lines else ""


class Engine:
    def __init__(
        self,
        plan: Plan,
        session: Session,
        recorder: Recorder,
        reporter: Reporter,
        options: Options,
        base_vars: Mapping[str, Any],
        extra_vars: Mapping[str, Any],
        redactor: Redactor,
        clock: Clock,
        run_id: str,
    ) -> None:
        self.plan = plan
        self.session = session
        self.recorder = recorder
        self.reporter = reporter
        self.options = options
        self.base = dict(base_vars)
        self.extra = dict(extra_vars)
        self.redactor = redactor
        self.clock = clock
        self.run_id = run_id
        self.runtime: dict[str, Any] = {}
        self.outcomes: dict[int, Outcome] = {}
        self.ordered: list[Outcome] = []
        self.halt: _Halt | None = None
        self.completed: list[tuple[PlannedStep, dict[str, Any], int]] = []
        self.gates = GateCheck(options.scale)
        self._seqs: dict[int, int] = {}
        # Steps done inside an open transaction block: (seq, outcome); recorded
        # as ok only once the block commits.
        self._pending: list[tuple[int, Outcome]] = []
        self.info = RunInfo(
            run_id,
            options.mode,
            plan.playbook.name,
            plan.playbook.kind,
            plan.target.name,
            options.operator,
            check=options.check,
            rehearse=options.rehearse,
        )

    # -- the run ------------------------------------------------------------

    def run(self, dsn_shown: str) -> RunOutcome:
        started = time.perf_counter()
        record = RunRecord(
            self.run_id, self.options.mode, self.options.operator, self.options.parent_run
        )
        started_at = self.recorder.run_started(
            record, self.plan, dsn_shown, {**self.plan.playbook.vars, **self.extra}
        )
        self.reporter.run_started(self.plan, self.run_id)
        try:
            if self.options.rehearse:
                self.session.begin()
            self._run_steps(self.plan.steps, ())
        finally:
            if self.options.rehearse:
                with contextlib.suppress(psycopg.Error, RunbookError):
                    self.session.rollback()
        self._mark_not_run()
        outcome = self._finish(started_at, started)
        self.recorder.run_finished(outcome)
        self.reporter.run_finished(outcome)
        return outcome

    def _finish(self, started_at: str, started: float) -> RunOutcome:
        statuses = {o.status for o in self.ordered}
        if self.halt and self.halt.interrupted:
            status, reason = RunStatus.INTERRUPTED, "interrupted by the operator"
        elif Status.FAILED in statuses:
            status, reason = RunStatus.FAILED, "a step failed"
        elif Status.GATE_FAILED in statuses:
            status, reason = RunStatus.GATE_FAILED, "a gate failed"
        else:
            status, reason = RunStatus.OK, "all steps passed"
        if self.halt:
            where = self.halt.outcome
            reason = f"{reason}: step {where.number} {where.name!r}: {where.error or where.reason}"
        severity = self.gates.worst(o.severity for o in self.ordered)
        ran = any(o.status in (Status.OK, Status.GATE_FAILED, Status.FAILED) for o in self.ordered)
        if not ran:
            reason = "no step ran"
        return RunOutcome(
            nagios=self._nagios(status, severity, ran),
            run_id=self.run_id,
            playbook=self.plan.playbook.name,
            target=self.plan.target.name,
            mode=self.options.mode,
            status=status,
            steps=self.ordered,
            severity=severity,
            started_at=started_at,
            ended_at=iso(self.clock.now()),
            duration_ms=(time.perf_counter() - started) * 1000,
            reason=reason,
            journal=str(self.recorder.journal.path),
        )

    def _nagios(self, status: RunStatus, severity: str | None, ran: bool) -> int:
        """Nagios plugin status: no check ran, or a step errored, is never OK: UNKNOWN."""
        if not ran or status in (
            RunStatus.FAILED,
            RunStatus.INTERRUPTED,
            RunStatus.ROLLBACK_FAILED,
        ):
            return 3
        level = self.options.scale.get(severity) if severity else None
        if level is not None:
            return level.nagios
        return 2 if status is RunStatus.GATE_FAILED else 0

    def _run_steps(
        self,
        steps: tuple[PlannedStep, ...],
        layers: tuple[dict[str, Any], ...],
        in_block: bool = False,
    ) -> None:
        for ps in steps:
            if self.halt:
                return
            self._run_planned(ps, layers, in_block)

    def _scope(self, ps: PlannedStep, layers: tuple[dict[str, Any], ...]) -> dict[str, Any]:
        scope = dict(self.base)
        for layer in layers:
            scope.update(layer)
        scope.update(self.runtime)
        if ps.step.vars:
            scope.update({k: variables.render_native(v, scope) for k, v in ps.step.vars.items()})
        scope.update(self.extra)
        return scope

    def _run_planned(
        self, ps: PlannedStep, layers: tuple[dict[str, Any], ...], in_block: bool
    ) -> None:
        if not ps.selected:
            self._skip_tree(ps, "not selected by --tags / --skip-tags")
            return
        try:
            scope = self._scope(ps, layers)
            when = ps.step.when
            if when is not None and not (
                when if isinstance(when, bool) else template.evaluate_all(when, scope)
            ):
                shown = str(when) if isinstance(when, bool) else " and ".join(when)
                self._skip_tree(ps, f"when: {shown} is false")
                return
        except (TemplateError, StepError) as exc:
            self._fail_before_start(ps, exc)
            return
        if ps.kind == "include":
            self._run_include(ps, layers, scope)
        elif ps.kind == "transaction":
            self._run_transaction(ps, layers, scope)
        else:
            self._run_action(ps, scope, in_block)

    # -- structure: include and transaction ---------------------------------

    def _run_include(
        self, ps: PlannedStep, layers: tuple[dict[str, Any], ...], scope: dict[str, Any]
    ) -> None:
        included = ps.children[0].playbook if ps.children else ps.playbook
        secrets: set[str] = set()
        layer = variables.resolve_all(included.vars, f"playbook {included.name}", secrets)
        layer.update({k: scope[k] for k in ps.step.vars})
        self.redactor.add(secrets)
        seq = self.recorder.step_started(ps)
        self.reporter.step_started(ps)
        started = time.perf_counter()
        self._run_steps(ps.children, (*layers, layer))
        self._close_group(ps, seq, started, f"{len(ps.children)} step(s) of {included.name}")

    def _run_transaction(
        self, ps: PlannedStep, layers: tuple[dict[str, Any], ...], scope: dict[str, Any]
    ) -> None:
        nested = self.session.in_transaction  # a rehearsal is one outer transaction
        savepoint = f"rb_block_{ps.index}"
        seq = self.recorder.step_started(ps)
        self.reporter.step_started(ps)
        started = time.perf_counter()
        first_completed = len(self.completed)
        self._pending = []
        try:
            self.session.savepoint(savepoint) if nested else self.session.begin()
        except (psycopg.Error, RunbookError) as exc:
            self._end(ps, seq, self._failure(ps, exc, started, 1))
            return
        self._run_steps(ps.children, layers, in_block=True)
        inner = [o for c in ps.children for o in [self.outcomes.get(c.index)] if o is not None]
        try:
            if self.halt:
                self.session.rollback_to(savepoint) if nested else self.session.rollback()
                self._undo_block(ps, inner, first_completed)
            else:
                self.session.release(savepoint) if nested else self.session.commit()
                committed = [
                    (seq_, {"status": Status.OK.value, "reason": ""}) for seq_, _ in self._pending
                ]
                self.recorder.steps_updated(committed, "transaction.commit")
        except (psycopg.Error, RunbookError) as exc:
            self._undo_block(ps, inner, first_completed)
            self._end(ps, seq, self._failure(ps, exc, started, 1))
            return
        finally:
            self._pending = []
        self._close_group(ps, seq, started, f"{len(inner)} step(s) in one transaction")

    def _undo_block(self, ps: PlannedStep, inner: list[Outcome], first_completed: int) -> None:
        changes = []
        for seq, outcome in self._pending:
            outcome.status = Status.ROLLED_BACK
            outcome.reason = "the transaction was rolled back"
            changes.append((seq, {"status": outcome.status.value, "reason": outcome.reason}))
        del self.completed[first_completed:]
        self.recorder.steps_updated(changes, "transaction.rollback")
        for outcome in inner:
            if outcome.status is Status.ROLLED_BACK:
                self.reporter.step_finished(outcome)  # shown again, now rolled back

    def _close_group(self, ps: PlannedStep, seq: int, started: float, note: str) -> None:
        inner = [self.outcomes[c.index] for c in ps.children if c.index in self.outcomes]
        bad = next((o for o in inner if o.status in (Status.FAILED, Status.GATE_FAILED)), None)
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
        self._end(ps, seq, outcome)
        if outcome.status is Status.OK:
            self.completed.append((ps, {}, seq))

    # -- one action -----------------------------------------------------------

    def _context(self, ps: PlannedStep, scope: dict[str, Any]) -> StepContext:
        step, pb, o = ps.step, ps.playbook, self.options
        return StepContext(
            planned=ps,
            scope=scope,
            session=self.session,
            run=self.info,
            root=o.root,
            timeout=step.timeout or pb.timeout or o.timeout,
            lock_timeout=(step.options.get("lock_timeout") and float(step.options["lock_timeout"]))
            or pb.lock_timeout,
            clock=self.clock,
            assume_yes=o.assume_yes,
            prompter=o.prompter,
            notifier=o.notifier,
            session_env=o.session_env,
        )

    def _run_action(self, ps: PlannedStep, scope: dict[str, Any], in_block: bool) -> None:
        step = ps.step
        action = REGISTRY[ps.kind]
        ctx = self._context(ps, scope)
        if self.options.check and (action.may_write(step) or ps.kind in _OUTSIDE):
            self._preview(ps, ctx, action.preview)
            return
        if self.options.rehearse and step.options.get("autocommit"):
            self._skip_tree(
                ps,
                "not rehearsed: an autocommit step cannot run inside the rehearsal's transaction",
            )
            return
        # A step that may change something starts only once its record is on disk.
        durable = in_block or action.may_write(step)
        seq = self.recorder.step_started(ps, durable=durable)
        self._seqs[ps.index] = seq
        self.reporter.step_started(ps)
        started = time.perf_counter()
        result: Result | None = None
        error: BaseException | None = None
        history: list[dict[str, Any]] = []
        delay = step.delay
        attempts = 0
        savepoint = f"rb_step_{ps.index}"
        while True:
            attempts += 1
            attempt_started = time.perf_counter()
            try:
                if in_block:
                    self.session.savepoint(savepoint)
                result = action.run(ctx)
                if in_block:
                    self.session.release(savepoint)
                if step.until is None or self._until(
                    step.until, {**scope, **self._registered_view(ps, result)}
                ):
                    error = None
                    break
                error = StepError(
                    f"until: {self._shown(step.until)} is still false after {attempts} attempt(s)",
                    result=result,
                )
            except KeyboardInterrupt as exc:
                error = exc
                break
            except Exception as exc:
                error = exc
                if in_block:
                    with contextlib.suppress(psycopg.Error, RunbookError):
                        self.session.rollback_to(savepoint)
            history.append(
                {
                    "attempt": attempts,
                    "at": iso(self.clock.now()),
                    "error": self._error_text(error)[0],
                    "duration_ms": round((time.perf_counter() - attempt_started) * 1000, 3),
                }
            )
            if attempts > step.retries:
                break
            self.clock.sleep(delay)
            delay *= step.backoff
        outcome = self._outcome(ps, ctx, result, error, started, attempts)
        outcome.history = history if attempts > 1 else []
        self.redactor.add(ctx.secrets)
        self._end(
            ps,
            seq,
            outcome,
            result if error is None else getattr(error, "result", None),
            pending=in_block,
            durable=durable,
        )
        if outcome.status is Status.OK:
            self.completed.append((ps, scope, seq))

    @staticmethod
    def _until(until: tuple[str, ...] | bool, scope: dict[str, Any]) -> bool:
        return until if isinstance(until, bool) else template.evaluate_all(until, scope)

    @staticmethod
    def _shown(conditions: tuple[str, ...] | bool | None) -> str:
        return str(conditions) if not isinstance(conditions, tuple) else " and ".join(conditions)

    def _outcome(
        self,
        ps: PlannedStep,
        ctx: StepContext,
        result: Result | None,
        error: BaseException | None,
        started: float,
        attempts: int,
    ) -> Outcome:
        if error is not None:
            outcome = self._failure(ps, error, started, attempts)
            outcome.rendered = ";\n".join(ctx.rendered) or None
            outcome.params = list(ctx.params) or None
            failed_result = getattr(error, "result", None)
            if isinstance(failed_result, Result):
                outcome.result = failed_result.serialize(self.options.row_sample)
            return self._redacted(outcome)
        assert result is not None
        self._register(ps, result)
        gates: list[GateOutcome] = []
        if ps.step.gates or ps.kind == "classify":
            # ctx.scope was made for this step alone: add the result to it in place.
            ctx.scope.update(self._registered_view(ps, result))
            gates = self.gates.evaluate(ps, ctx.scope, result, ctx, self.runtime)
        failing = next((g for g in gates if not g.passed), None)
        outcome = Outcome(
            ps.index,
            ps.number,
            ps.name,
            ps.kind,
            Status.GATE_FAILED if failing else Status.OK,
            reason=failing.message if failing else "",
            duration_ms=(time.perf_counter() - started) * 1000,
            severity=failing.severity if failing else ctx.severity,
            rendered=";\n".join(ctx.rendered) or None,
            params=list(ctx.params) or None,
            rowcount=getattr(result, "rowcount", None),
            result=result.serialize(self.options.row_sample),
            notices=list(getattr(result, "notices", [])),
            gates=gates,
            attempts=attempts,
            key=ps.step.key,
            note=ctx.note or self._note(result),
        )
        return self._redacted(outcome)

    def _registered_view(self, ps: PlannedStep, result: Result) -> dict[str, Any]:
        view: dict[str, Any] = {"result": result}
        if ps.step.register:
            view[ps.step.register] = result
        return view

    @staticmethod
    def _note(result: Result) -> str:
        rows = getattr(result, "rows", None)
        if rows is not None and getattr(result, "columns", None):
            return f"{len(rows)} row(s)"
        rowcount = getattr(result, "rowcount", None)
        return f"{rowcount} row(s) affected" if rowcount else ""

    def _register(self, ps: PlannedStep, result: Result) -> None:
        if ps.kind == "set" and isinstance(result, ValueResult):
            self.runtime.update(result.values)
        if ps.step.register:
            self.runtime[ps.step.register] = result

    def _error_text(self, error: BaseException) -> tuple[str, str | None]:
        if isinstance(error, KeyboardInterrupt):
            return "interrupted by the operator (the running statement was cancelled)", None
        if isinstance(error, psycopg.Error):
            sqlstate = error.sqlstate
            diag = error.diag
            text = diag.message_primary or _one_line(str(error)) or type(error).__name__
            if sqlstate == "25006":
                text += (
                    f" — this playbook is kind: {self.plan.playbook.kind} and runs read-only"
                    if self.plan.playbook.kind == "check"
                    else " — this run is read-only (--check)"
                )
            elif sqlstate == "55P03":
                text += " (lock_timeout: another session holds the lock)"
            if diag.message_detail:
                text += f" ({diag.message_detail})"
            if isinstance(error, psycopg.OperationalError) and sqlstate is None:
                text = f"connection to target {self.plan.target.name!r} lost: {text}"
            return text, sqlstate
        if isinstance(error, StepTimeout | StepError | TemplateError | RunbookError):
            return str(error), getattr(error, "sqlstate", None)
        return f"{type(error).__name__}: {error}", None

    def _failure(
        self, ps: PlannedStep, error: BaseException, started: float, attempts: int
    ) -> Outcome:
        text, sqlstate = self._error_text(error)
        if isinstance(error, TemplateError):
            text = f"{ps.step.loc}: {text}"
        return Outcome(
            ps.index,
            ps.number,
            ps.name,
            ps.kind,
            Status.FAILED,
            reason=text,
            error=text,
            sqlstate=sqlstate,
            duration_ms=(time.perf_counter() - started) * 1000,
            attempts=attempts,
            key=ps.step.key,
        )

    def _redacted(self, outcome: Outcome) -> Outcome:
        r = self.redactor
        if not r:
            return outcome
        outcome.reason = r.text(outcome.reason)
        outcome.error = r.text(outcome.error) if outcome.error else None
        outcome.rendered = r.text(outcome.rendered) if outcome.rendered else None
        outcome.params = r.value(outcome.params)
        outcome.result = r.value(outcome.result)
        outcome.notices = r.value(outcome.notices)
        outcome.note = r.text(outcome.note)
        for gate in outcome.gates:
            gate.message = r.text(gate.message)
        return outcome

    def _preview(self, ps: PlannedStep, ctx: StepContext, preview: Any) -> None:
        started = time.perf_counter()
        try:
            shown = preview(ctx)
        except (TemplateError, StepError, RunbookError, psycopg.Error) as exc:
            self._fail_before_start(ps, exc)
            return
        outcome = Outcome(
            ps.index,
            ps.number,
            ps.name,
            ps.kind,
            Status.SKIPPED,
            reason="--check: shown, not run",
            rendered=shown,
            duration_ms=(time.perf_counter() - started) * 1000,
            key=ps.step.key,
        )
        if ps.step.register:
            self.runtime[ps.step.register] = SkippedResult("not run in --check")
        self._record_once(ps, self._redacted(outcome))

    # -- endings ----------------------------------------------------------------

    def _end(
        self,
        ps: PlannedStep,
        seq: int,
        outcome: Outcome,
        registered: Any = None,
        pending: bool = False,
        durable: bool = True,
    ) -> None:
        self.outcomes[ps.index] = outcome
        self.ordered.append(outcome)
        keep = registered if ps.step.register and isinstance(registered, Result) else None
        if pending and outcome.status is Status.OK:
            # Not ok in the journal until its transaction commits.
            self._pending.append((seq, outcome))
            held = Outcome(
                **{
                    **outcome.__dict__,
                    "status": Status.RUNNING,
                    "reason": "done; waits for its transaction to commit",
                }
            )
            self.recorder.step_finished(seq, ps, held, keep)
        else:
            self.recorder.step_finished(seq, ps, outcome, keep, durable=durable)
        self.reporter.step_finished(outcome)
        self._decide(ps, outcome)

    def _record_once(self, ps: PlannedStep, outcome: Outcome) -> None:
        self.outcomes[ps.index] = outcome
        self.ordered.append(outcome)
        self.recorder.step_skipped(ps, outcome)
        self.reporter.step_finished(outcome)

    def _fail_before_start(self, ps: PlannedStep, exc: BaseException) -> None:
        outcome = self._redacted(self._failure(ps, exc, time.perf_counter(), 0))
        self._record_once(ps, outcome)
        self._decide(ps, outcome)

    def _skip_tree(self, ps: PlannedStep, reason: str, status: Status = Status.SKIPPED) -> None:
        for node in ps.walk():
            if node.index in self.outcomes:
                continue
            if node.step.register and status is Status.SKIPPED:
                self.runtime[node.step.register] = SkippedResult(reason)
            outcome = Outcome(
                node.index,
                node.number,
                node.name,
                node.kind,
                status,
                reason=reason,
                key=node.step.key,
            )
            self._record_once(node, outcome)

    def _mark_not_run(self) -> None:
        if not self.halt:
            return
        where = self.halt.outcome
        for ps in self.plan.steps:
            self._skip_tree(ps, f"the run stopped at step {where.number}", Status.NOT_RUN)

    def _decide(self, ps: PlannedStep, outcome: Outcome) -> None:
        if self.halt or outcome.status not in (Status.FAILED, Status.GATE_FAILED):
            return
        if outcome.error and outcome.error.startswith("interrupted"):
            self.halt = _Halt(outcome, "halt", interrupted=True)
            return
        policy = ps.step.on_failure or ps.playbook.on_failure
        if outcome.status is Status.GATE_FAILED:
            gate_policy = next((g.on_failure for g in ps.step.gates if g.on_failure), None)
            policy = gate_policy or policy
            if self.options.notifier is not None:
                failing = next((g for g in outcome.gates if not g.passed), None)
                self.recorder.flush()  # the incident refers to records that must exist
                self._escalate(ps, outcome, failing)
        if policy != "continue":
            self.halt = _Halt(outcome, policy)

    def _escalate(self, ps: PlannedStep, outcome: Outcome, gate: GateOutcome | None) -> None:
        notifier = self.options.notifier
        assert notifier is not None
        name = gate.name if gate else ps.step.key
        with contextlib.suppress(Exception):  # notifying must never break the run
            notifier.escalate(
                f"{self.plan.playbook.name}:{name}:{self.plan.target.name}",
                outcome.severity or self.options.scale.highest.name,
                outcome.reason,
                policy=None,
                gate=name,
                explicit=False,
            )
