"""The run loop: steps in order, include and transaction blocks, halting.

Every step is recorded before it runs and again when it ends; steps that never
ran are recorded as skipped or not_run, so the journal shows every step of the
plan. On a halt with `on_failure: rollback` the completed steps are undone in
reverse order (`runbook.engine.undo`).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import psycopg

from runbook.context import Notifier, RunInfo
from runbook.engine import action, blocks, failures, loops, summary, undo
from runbook.engine.gates import STOPPING, GateCheck, strictest
from runbook.engine.ports import RunContext
from runbook.engine.scope import Registered, step_scope
from runbook.engine.state import Done, Halt, RunState
from runbook.errors import RunbookError, StepError, TemplateError
from runbook.journal.recorder import RunRecord
from runbook.outcome import GateOutcome, Outcome, RunOutcome, RunStatus, Status
from runbook.plan import Plan, PlannedStep
from runbook.results import Result, SkippedResult
from runbook.sqltemplate import template

# A Ctrl-C before the run's first step: the whole target passed over, so.
BEFORE_FIRST_STEP = (RunStatus.INTERRUPTED, "interrupted (Ctrl-C) before its first step")


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
        self.gates = GateCheck(options.scale)
        self.state = RunState()
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
            record, self.plan, dsn_shown, {**self.plan.playbook.vars, **self.extra}, durable=False
        )
        if self._connects_first():
            # Connecting overlaps the writing of the run's start: under a
            # fleet's load each is tens of milliseconds a target.
            self.session.connect_ahead()
        # The start is on disk before the target sees a statement of this run
        # (and a run id taken twice stops here, as a Conflict, with nothing run).
        try:
            self.recorder.flush()
            ctrl_c = False
        except KeyboardInterrupt:
            ctrl_c = True  # the writer goes on: the start is written all the same
        self.reporter.run_started(self.plan, self.run_id)
        self._restore()
        try:
            self.state.passed_over = BEFORE_FIRST_STEP if ctrl_c else self._before_steps()
            if self.state.passed_over is not None:
                status, reason = self.state.passed_over
                marked = Status.SKIPPED if status is RunStatus.SKIPPED else Status.NOT_RUN
                for ps in self.plan.steps:
                    self.skip_tree(ps, reason, marked)
            elif o.undo_only:
                self.state.undo_summary = undo.undo_completed(self)
            else:
                self.run_steps(self.plan.steps, ())
                self._mark_not_run()
                halt = self.state.halt
                if halt and halt.policy == "rollback" and not halt.interrupted:
                    self.state.undo_summary = undo.undo_completed(self)
        finally:
            if o.rehearse:
                with contextlib.suppress(psycopg.Error, RunbookError):
                    self.session.rollback()
        outcome = summary.finish(
            self.state,
            self.info,
            self.options,
            self.gates,
            journal=self.recorder.journal.where,
            clock=self.clock,
            started_at=started_at,
            started=started,
            # Never connected, refused: the target is unreachable, not a failed run.
            unreachable=self.session.unreachable,
        )
        if o.notifier is not None:
            self._notify_end(o.notifier, outcome)
        self.recorder.run_finished(outcome)
        self.reporter.run_finished(outcome)
        return outcome

    def _notify_end(self, notifier: Notifier, outcome: RunOutcome) -> None:
        """Recoveries, then the wait for deliveries still going (at most the
        grace period: a receiver may never answer). Notifying never breaks a
        run; a Ctrl-C during it (the operator tired of the wait) lets go of
        the deliveries at once, pending for the next `escalations tick`, and
        the run ends interrupted (exit 130, as Ctrl-C at any point), its
        steps as they ended, its end journaled: it once escaped here and left
        the run without an end."""
        try:
            with contextlib.suppress(Exception):
                notifier.recovered(self._passed_gate_keys(outcome))
            with contextlib.suppress(Exception):
                outcome.notifications = notifier.finish()
        except KeyboardInterrupt:
            with contextlib.suppress(Exception):
                outcome.notifications = notifier.finish(cut="delivery cut short by Ctrl-C")
            outcome.reason = (
                f"interrupted (Ctrl-C) while its deliveries went, after: {outcome.reason}"
            )
            outcome.status = RunStatus.INTERRUPTED
            outcome.nagios = 3  # UNKNOWN, as for any interrupted run

    def _connects_first(self) -> bool:
        """Whether the run's first act is a statement to its target: the
        rehearsal's BEGIN, run_on's question, or a first step that queries."""
        o = self.options
        if (
            o.not_run is not None
            or o.undo_only
            or o.resume is not None
            or o.approve is not None
            or o.step_by_step is not None
        ):
            return False
        if o.rehearse or o.run_on != "any":
            return True
        first = self.plan.steps[0] if self.plan.steps else None
        return (
            first is not None
            and first.selected
            and first.kind == "query"
            and first.step.when is None
            and first.step.loop is None
        )

    def _before_steps(self) -> tuple[RunStatus, str] | None:
        """The rehearsal's BEGIN and run_on's question, the first statements
        to the target outside any step: a Ctrl-C there (while connecting, say,
        to a target slow to answer) passes the whole target over, interrupted,
        every step not run and the run's end journaled, as a Ctrl-C in a step
        would (and as one while the run's start is being written); it once
        left the run without an end."""
        try:
            if self.options.rehearse:
                self.session.begin()
            return self._passed_over()
        except KeyboardInterrupt:
            return BEFORE_FIRST_STEP

    def _passed_over(self) -> tuple[RunStatus, str] | None:
        """Whether this target is not to run at all: the fleet said so, or the
        server is not of the kind `run_on` asks for (pg_is_in_recovery())."""
        o = self.options
        if o.not_run is not None:
            return RunStatus.NOT_RUN, o.not_run
        if o.run_on == "any":
            return None
        try:
            standby = self.session.in_recovery()
        except (psycopg.Error, RunbookError):
            # Not reachable now: the steps run as they would (a shell step needs
            # no server; a SQL step fails on the connection, and a standby
            # refuses writes of its own).
            return None
        if standby == (o.run_on == "standby"):
            return None
        kind = "a standby (pg_is_in_recovery() is true)" if standby else "a primary"
        return RunStatus.SKIPPED, f"run_on: {o.run_on}, and this server is {kind}"

    def _passed_gate_keys(self, outcome: RunOutcome) -> set[str]:
        """The incident keys of the gates that passed (and of none that failed):
        their open incidents have recovered."""
        name, target = self.plan.playbook.name, self.plan.target.name
        passed: set[str] = set()
        failed: set[str] = set()
        for step in outcome.steps:
            if step.undoes is not None:
                continue
            for gate in step.gates:
                (passed if gate.passed else failed).add(f"{name}:{gate.name}:{target}")
        return passed - failed

    def _restore(self) -> None:
        """A resume (or rollback) starts from what the earlier run completed."""
        resume = self.options.resume
        if resume is None:
            return
        self.runtime.update(resume.runtime)
        for ps in self.plan.walk():
            if ps.step.loop is not None:
                # A looped step is undone iteration by iteration, newest first.
                self.state.completed.extend(loops.restored(ps, resume))
            elif ps.index in resume.done:
                run_id, seq = resume.done[ps.index]
                self.state.completed.append(Done(ps, {}, run_id, seq))

    def run_steps(
        self,
        steps: tuple[PlannedStep, ...],
        layers: tuple[dict[str, Any], ...],
        in_block: bool = False,
    ) -> None:
        for ps in steps:
            if self.state.stopped():
                return
            self.run_planned(ps, layers, in_block)

    def run_planned(
        self, ps: PlannedStep, layers: tuple[dict[str, Any], ...], in_block: bool
    ) -> None:
        resume = self.options.resume
        if resume is not None and ps.index in resume.done and self.state.undoing is None:
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
        if ps.step.loop is not None:
            # `when` is asked of each item (runbook.engine.loops).
            loops.run_loop(self, ps, in_block, scope)
            return
        when = ps.step.when
        try:
            if when is not None and not (
                when if isinstance(when, bool) else template.evaluate_all(when, scope)
            ):
                shown = str(when) if isinstance(when, bool) else " and ".join(when)
                reason = f"when: {shown} is false"
                why = ps.step.options.get("skip_message")
                if why:
                    reason = f"{template.render_text(str(why), scope)} ({reason})"
                self.skip_tree(ps, reason)
                return
        except (TemplateError, StepError) as exc:
            self.fail_before_start(ps, exc)
            return
        if ps.kind == "include":
            blocks.run_include(self, ps, layers, scope)
        elif ps.kind == "transaction":
            blocks.run_transaction(self, ps, layers, scope)
        else:
            self._apply(ps, scope, in_block, action.run_action(self, ps, scope, in_block))

    def _apply(
        self, ps: PlannedStep, scope: dict[str, Any], in_block: bool, ended: action.Ended
    ) -> None:
        """Record how an action step ended: the step says, the run records and decides."""
        if isinstance(ended, action.Ran):
            outcome, seq = ended.outcome, ended.seq
            self.end(ps, seq, outcome, ended.registered, pending=in_block, durable=ended.durable)
            # A step whose own gate failed still made its change: a rollback undoes it.
            if outcome.status in (Status.OK, Status.GATE_FAILED) and self.state.undoing is None:
                self.done(ps, scope, seq)
        elif isinstance(ended, action.Shown):
            self.record_once(ps, ended.outcome)
        elif isinstance(ended, action.Refused):
            self.fail_before_start(ps, ended.error)
        else:
            self.skip_tree(ps, ended.reason)

    # -- endings ----------------------------------------------------------------

    def done(self, ps: PlannedStep, scope: dict[str, Any], seq: int) -> None:
        # The scope is kept only to render the step's rollback steps, if it has
        # any: a copy, as an action step's scope is the run's, lent to it.
        self.state.completed.append(Done(ps, dict(scope) if ps.rollback else {}, self.run_id, seq))

    def failure(
        self, ps: PlannedStep, error: BaseException, started: float, attempts: int
    ) -> Outcome:
        outcome = failures.failure(
            ps, error, started, attempts, self.plan.playbook.kind, self.plan.target.name
        )
        return failures.redacted(outcome, self.redactor)

    def _add(self, ps: PlannedStep, outcome: Outcome) -> None:
        state = self.state
        if state.undoing is not None:
            outcome.undoes = state.undoing
        state.outcomes[ps.index] = outcome
        state.ordered.append(outcome)

    def end(
        self,
        ps: PlannedStep,
        seq: int,
        outcome: Outcome,
        registered: Any = None,
        pending: bool = False,
        durable: bool = True,
        decide: bool = True,
        counted: bool = True,
    ) -> None:
        if counted:  # an iteration of a loop is not: its summary is
            self._add(ps, outcome)
        # A `set` step registers its values too: resume restores them, typed.
        named = ps.step.register or ps.kind == "set"
        keep = registered if named and isinstance(registered, Result) else None
        if pending and outcome.status is Status.OK:
            # Not ok in the journal until its transaction commits.
            self.state.pending.append((seq, outcome))
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
            if node.index in self.state.outcomes:
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
        if not self.state.halt:
            return
        where = self.state.halt.outcome
        why = f"the run stopped at step {where.number}"
        if self.session.lost:
            why += f": the target {self.plan.target.name!r} cannot be reached"
        for ps in self.plan.steps:
            self.skip_tree(ps, why, Status.NOT_RUN)

    def _decide(self, ps: PlannedStep, outcome: Outcome) -> None:
        if outcome.status not in _STOPPING:
            return
        state = self.state
        if state.undoing is not None:
            state.undo_failed = True
            if outcome.error and outcome.error.startswith("interrupted"):
                state.undo_interrupted = True  # the run ends interrupted (130), not failed
            return
        if state.halt:
            return
        if outcome.error and outcome.error.startswith("interrupted"):
            state.halt = Halt(outcome, "halt", interrupted=True)
            return
        if outcome.status in (Status.DECLINED, Status.AWAITING_APPROVAL):
            # The operator said no: stop here, whatever on_failure says, and
            # undo nothing unasked (`runbook rollback` does, when they want it).
            state.halt = Halt(outcome, "halt")
            return
        if self.session.lost:
            # Whatever on_failure says: every later step would fail the same
            # way (and steps using this one's results with them); nothing can
            # be undone without the target either. `runbook resume` goes on.
            state.halt = Halt(outcome, "halt")
            return
        policy = ps.step.on_failure or ps.playbook.on_failure
        if outcome.status is Status.GATE_FAILED:
            failing = [g for g in outcome.gates if not g.passed]
            policy = strictest(ps, {g.name for g in failing}, policy)
            if self.options.notifier is not None:
                self.recorder.flush()  # the incident refers to records that must exist
                # One incident per failing gate: each is a check of its own.
                for gate in failing:
                    self._escalate(ps, outcome, gate)
        if policy != "continue":
            state.halt = Halt(outcome, policy)

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


_STOPPING = STOPPING
