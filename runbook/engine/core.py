"""The run loop: steps in order, include and transaction blocks, halting.

Every step is recorded before it runs and again when it ends; steps that never
ran are recorded as skipped or not_run, so the journal shows every step of the
plan. On a halt with `on_failure: rollback` the completed steps are undone in
reverse order (`runbook.engine.undo`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psycopg

from runbook.clock import Clock
from runbook.context import Notifier, Prompter, RunInfo
from runbook.engine import action, blocks, failures, summary
from runbook.engine.gates import GateCheck, gate_name
from runbook.engine.scope import Registered, step_scope
from runbook.errors import RunbookError, StepError, TemplateError
from runbook.journal.recorder import Recorder, RunRecord
from runbook.model import Scale
from runbook.outcome import GateOutcome, Outcome, RunOutcome, Status
from runbook.pg.db import Session
from runbook.pg.pgtools import TargetTools
from runbook.plan import Plan, PlannedStep
from runbook.redact import Redactor
from runbook.results import Result, SkippedResult
from runbook.sqltemplate import template


class Reporter(Protocol):
    def run_started(self, plan: Plan, run_id: str) -> None: ...
    def step_started(self, ps: PlannedStep) -> None: ...
    def step_finished(self, outcome: Outcome) -> None: ...
    def run_finished(self, outcome: RunOutcome) -> None: ...


@dataclass
class Done:
    """A step whose work committed: what rollback would undo."""

    ps: PlannedStep
    scope: dict[str, Any]
    run_id: str
    seq: int | None


@dataclass
class Resume:
    """What an earlier run (or `runbook rollback`'s target run) completed."""

    parent: str
    done: dict[int, tuple[str, int | None]]  # step index → (run id, seq) where it completed
    runtime: dict[str, Any] = field(default_factory=dict)  # registered results restored
    # Rollback steps already committed, per step undone: an undo goes on, not again.
    undo_done: dict[int, set[int]] = field(default_factory=dict)


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
    # The target's PostgreSQL client programs, chosen when a shell step needs them.
    client_tools: TargetTools | None = None
    parent_run: str | None = None
    resume: Resume | None = None
    undo_only: bool = False  # `runbook rollback`: only undo what `resume` lists
    forced: str | None = None
    continues: str | None = None
    selection: dict[str, Any] = field(default_factory=dict)
    consent: dict[str, Any] | None = None  # who let it start (runbook.consent)
    notify: bool = True  # False (--no-notify): no incidents, no notify or escalate steps
    # --step: asked before each step (not while undoing); False skips the step.
    step_by_step: Callable[[PlannedStep], bool] | None = None


@dataclass
class Halt:
    outcome: Outcome
    policy: str  # halt | rollback
    interrupted: bool = False


@dataclass
class RunContext:
    """Everything one run of a plan on its target works with, besides the plan."""

    run_id: str
    session: Session
    recorder: Recorder
    reporter: Reporter
    options: Options
    redactor: Redactor
    clock: Clock
    base_vars: Mapping[str, Any] = field(default_factory=dict)  # built-ins and vars
    extra_vars: Mapping[str, Any] = field(default_factory=dict)  # -e


class Engine:
    """Runs one plan on its target: steps in order, gates, halts, undo."""

    def __init__(self, plan: Plan, ctx: RunContext) -> None:
        self.plan = plan
        self.session = ctx.session
        self.recorder = ctx.recorder
        self.reporter = ctx.reporter
        self.options = ctx.options
        self.base = dict(ctx.base_vars)
        self.extra = dict(ctx.extra_vars)
        self.redactor = ctx.redactor
        self.clock = ctx.clock
        self.run_id = ctx.run_id
        options, run_id = ctx.options, ctx.run_id
        self.runtime = Registered(self.base)
        self.outcomes: dict[int, Outcome] = {}
        self.ordered: list[Outcome] = []
        self.halt: Halt | None = None
        self.completed: list[Done] = []
        self.gates = GateCheck(options.scale)
        # Steps done inside an open transaction block: (seq, outcome); recorded
        # as ok only once the block commits.
        self.pending: list[tuple[int, Outcome]] = []
        # While undoing: the index of the step being undone, and whether a
        # rollback step failed.
        self.undoing: int | None = None
        self.undo_failed = False
        self.undo_summary = ""
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
        from runbook.engine.undo import Undo

        started = time.perf_counter()
        o = self.options
        record = RunRecord(
            self.run_id,
            o.mode,
            o.operator,
            o.parent_run,
            self.extra,
            o.selection,
            o.forced,
            o.continues,
            consent=o.consent,
        )
        started_at = self.recorder.run_started(
            record, self.plan, dsn_shown, {**self.plan.playbook.vars, **self.extra}
        )
        self.reporter.run_started(self.plan, self.run_id)
        self._restore()
        try:
            if o.rehearse:
                self.session.begin()
            if o.undo_only:
                Undo(self).run()
            else:
                self.run_steps(self.plan.steps, ())
                self._mark_not_run()
                if self.halt and self.halt.policy == "rollback" and not self.halt.interrupted:
                    Undo(self).run()
        finally:
            if o.rehearse:
                with contextlib.suppress(psycopg.Error, RunbookError):
                    self.session.rollback()
        outcome = summary.finish(self, started_at, started)
        if o.notifier is not None:
            with contextlib.suppress(Exception):  # notifying never breaks a run
                outcome.notifications = o.notifier.finish()
        self.recorder.run_finished(outcome)
        self.reporter.run_finished(outcome)
        return outcome

    def _restore(self) -> None:
        """A resume (or rollback) starts from what the earlier run completed."""
        resume = self.options.resume
        if resume is None:
            return
        self.runtime.update(resume.runtime)
        for ps in self.plan.walk():
            if ps.index in resume.done:
                run_id, seq = resume.done[ps.index]
                self.completed.append(Done(ps, {}, run_id, seq))

    def stopped(self) -> bool:
        """Whether the steps at hand must stop: a halt, or (undoing) a failed rollback step."""
        return self.undo_failed if self.undoing is not None else self.halt is not None

    def run_steps(
        self,
        steps: tuple[PlannedStep, ...],
        layers: tuple[dict[str, Any], ...],
        in_block: bool = False,
    ) -> None:
        for ps in steps:
            if self.stopped():
                return
            self.run_planned(ps, layers, in_block)

    def run_planned(
        self, ps: PlannedStep, layers: tuple[dict[str, Any], ...], in_block: bool
    ) -> None:
        resume = self.options.resume
        if resume is not None and ps.index in resume.done and self.undoing is None:
            self.skip_tree(ps, f"done in run {resume.done[ps.index][0]}")
            return
        if not ps.selected:
            self.skip_tree(ps, ps.skip_reason)
            return
        try:
            scope, lent = step_scope(ps, self.base, self.runtime, layers, self.extra)
        except (TemplateError, StepError) as exc:
            self.fail_before_start(ps, exc)
            return
        try:
            self._run_in_scope(ps, layers, in_block, scope)
        finally:
            if lent:
                self.runtime.give_back()  # the step's vars and result leave the run's scope

    def _run_in_scope(
        self,
        ps: PlannedStep,
        layers: tuple[dict[str, Any], ...],
        in_block: bool,
        scope: dict[str, Any],
    ) -> None:
        when = ps.step.when
        try:
            if when is not None and not (
                when if isinstance(when, bool) else template.evaluate_all(when, scope)
            ):
                shown = str(when) if isinstance(when, bool) else " and ".join(when)
                self.skip_tree(ps, f"when: {shown} is false")
                return
        except (TemplateError, StepError) as exc:
            self.fail_before_start(ps, exc)
            return
        if ps.kind == "include":
            blocks.run_include(self, ps, layers, scope)
        elif ps.kind == "transaction":
            blocks.run_transaction(self, ps, layers, scope)
        else:
            action.run_action(self, ps, scope, in_block)

    # -- endings ----------------------------------------------------------------

    def done(self, ps: PlannedStep, scope: dict[str, Any], seq: int) -> None:
        # The scope is kept only to render the step's rollback steps, if it has
        # any: a copy, as an action step's scope is the run's, lent to it.
        self.completed.append(Done(ps, dict(scope) if ps.rollback else {}, self.run_id, seq))

    def failure(
        self, ps: PlannedStep, error: BaseException, started: float, attempts: int
    ) -> Outcome:
        outcome = failures.failure(
            ps, error, started, attempts, self.plan.playbook.kind, self.plan.target.name
        )
        return failures.redacted(outcome, self.redactor)

    def _add(self, ps: PlannedStep, outcome: Outcome) -> None:
        if self.undoing is not None:
            outcome.undoes = self.undoing
        self.outcomes[ps.index] = outcome
        self.ordered.append(outcome)

    def end(
        self,
        ps: PlannedStep,
        seq: int,
        outcome: Outcome,
        registered: Any = None,
        pending: bool = False,
        durable: bool = True,
        decide: bool = True,
    ) -> None:
        self._add(ps, outcome)
        keep = registered if ps.step.register and isinstance(registered, Result) else None
        if pending and outcome.status is Status.OK:
            # Not ok in the journal until its transaction commits.
            self.pending.append((seq, outcome))
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
        if decide:
            self._decide(ps, outcome)

    def record_once(self, ps: PlannedStep, outcome: Outcome) -> None:
        self._add(ps, outcome)
        self.recorder.step_skipped(ps, outcome)
        self.reporter.step_finished(outcome)

    def fail_before_start(self, ps: PlannedStep, exc: BaseException) -> None:
        outcome = self.failure(ps, exc, time.perf_counter(), 0)
        self.record_once(ps, outcome)
        self._decide(ps, outcome)

    def skip_tree(self, ps: PlannedStep, reason: str, status: Status = Status.SKIPPED) -> None:
        for node in ps.walk():
            if node.index in self.outcomes:
                continue
            if (
                node.step.register
                and status is Status.SKIPPED
                and node.step.register not in self.runtime
            ):
                self.runtime[node.step.register] = SkippedResult(reason)
            self.record_once(
                node,
                Outcome(
                    node.index,
                    node.number,
                    node.name,
                    node.kind,
                    status,
                    reason=reason,
                    key=node.step.key,
                ),
            )

    def _mark_not_run(self) -> None:
        if not self.halt:
            return
        where = self.halt.outcome
        why = f"the run stopped at step {where.number}"
        if self.session.lost:
            why += f": the target {self.plan.target.name!r} cannot be reached"
        for ps in self.plan.steps:
            self.skip_tree(ps, why, Status.NOT_RUN)

    def _decide(self, ps: PlannedStep, outcome: Outcome) -> None:
        if outcome.status not in _STOPPING:
            return
        if self.undoing is not None:
            self.undo_failed = True
            return
        if self.halt:
            return
        if outcome.error and outcome.error.startswith("interrupted"):
            self.halt = Halt(outcome, "halt", interrupted=True)
            return
        if outcome.status is Status.DECLINED:
            # The operator said no: stop here, whatever on_failure says, and
            # undo nothing unasked (`runbook rollback` does, when they want it).
            self.halt = Halt(outcome, "halt")
            return
        if self.session.lost:
            # Whatever on_failure says: every later step would fail the same
            # way (and steps using this one's results with them); nothing can
            # be undone without the target either. `runbook resume` goes on.
            self.halt = Halt(outcome, "halt")
            return
        policy = ps.step.on_failure or ps.playbook.on_failure
        if outcome.status is Status.GATE_FAILED:
            failing = [g for g in outcome.gates if not g.passed]
            policy = _strictest(ps, {g.name for g in failing}, policy)
            if self.options.notifier is not None:
                self.recorder.flush()  # the incident refers to records that must exist
                # One incident per failing gate: each is a check of its own.
                for gate in failing:
                    self._escalate(ps, outcome, gate)
        if policy != "continue":
            self.halt = Halt(outcome, policy)

    def _escalate(self, ps: PlannedStep, outcome: Outcome, gate: GateOutcome | None) -> None:
        notifier = self.options.notifier
        assert notifier is not None
        name = gate.name if gate else ps.step.key
        # explicit=False never raises: a journal or channel problem is reported
        # in the run's notifications, and the run goes on.
        notifier.escalate(
            f"{self.plan.playbook.name}:{name}:{self.plan.target.name}",
            (gate.severity if gate else outcome.severity) or self.options.scale.highest.name,
            gate.message if gate else outcome.reason,
            policy=None,
            gate=name,
            explicit=False,
        )


_STOPPING = (Status.FAILED, Status.GATE_FAILED, Status.UNKNOWN, Status.DECLINED)
_STRICTNESS = {"continue": 0, "halt": 1, "rollback": 2}


def _strictest(ps: PlannedStep, failed: set[str], default: str) -> str:
    """The strictest `on_failure` of the failing gates, each defaulting to the step's."""
    policies = [
        gate.on_failure or default
        for index, gate in enumerate(ps.step.gates)
        if gate_name(ps, index) in failed
    ]
    return max(policies or [default], key=lambda p: _STRICTNESS.get(p, 1))
