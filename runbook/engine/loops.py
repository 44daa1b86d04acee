"""Looped steps: `loop:` runs one action step once per item.

The list is made once, when the step starts (a template giving a list, or a
YAML list whose items are rendered), in the step's scope; more than
MAX_LOOP_ITEMS items, or anything but a list, fails the step before any
iteration runs. Each iteration is its own record in the journal (the step's
index, its `iteration` and `item`, redacted), run as any action step (a
writing iteration in a transaction of its own with its marker), with the item
as `loop_var` (default `item`) and `loop_index` in its scope; its `when` and
gates are asked of it alone. The step's own record is the summary: the items
(what `runbook resume` compares), and a `LoopResult` with one result per
iteration reached, which is also what `register:` keeps.

A failing iteration stops the loop unless `on_failure: continue` (the step's,
the playbook's, or its failing gates'); the summary then ends as the iteration
that stopped it (or, under continue, the worst that failed), and the core
decides for the run as for any step. Iterations an earlier run completed are
not run again (`Resume.loops`).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

from runbook import variables
from runbook.engine import action, failures
from runbook.engine.gates import STOPPING, strictest
from runbook.engine.ports import IterationDone, LoopDone, Resume, Steps
from runbook.engine.state import Done
from runbook.errors import StepError, TemplateError
from runbook.model import LOOP_INDEX, MAX_LOOP_ITEMS
from runbook.outcome import GateOutcome, Outcome, Status
from runbook.plan import PlannedStep
from runbook.results import LoopResult, Result, SkippedResult, to_json
from runbook.sqltemplate import template

_WORST_FIRST = (Status.UNKNOWN, Status.DECLINED, Status.FAILED, Status.GATE_FAILED)


def items_of(ps: PlannedStep, scope: dict[str, Any]) -> list[Any]:
    """The step's items; a StepError with its place if they are not a bounded list."""
    step = ps.step
    value = variables.render_native(step.loop, scope)
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        shown = type(value).__name__ if value is not None else "nothing (null)"
        raise StepError(
            f"{step.loc}: loop: must give a list, not {shown}; write the expression "
            'alone (loop: "{{ tables }}", "{{ found.rows }}") or a YAML list'
        )
    if len(value) > MAX_LOOP_ITEMS:
        raise StepError(
            f"{step.loc}: loop: gives {len(value):,} items; a step loops over at most "
            f"{MAX_LOOP_ITEMS:,} (split the list, or do the work in one statement)"
        )
    return value


def iteration_step(ps: PlannedStep, k: int) -> PlannedStep:
    """The step as one iteration: same index, numbered `3[2]`."""
    return replace(ps, number=f"{ps.number}[{k}]")


def restored(ps: PlannedStep, resume: Resume) -> list[Done]:
    """What rollback would undo of a looped step an earlier run (partly) did."""
    loop = resume.loops.get(ps.index)
    if loop is None:
        return []
    var = ps.step.loop_var
    return [
        Done(iteration_step(ps, k), {}, d.run_id, d.seq, k, {var: d.item, LOOP_INDEX: k})
        for k, d in sorted(loop.done.items())
    ]


def _label(var: str, item: Any) -> str:
    """The item as a person reads it on the iteration's line (already redacted)."""
    text = repr(item) if isinstance(item, str) else _json(item)
    return f"{var}={text if len(text) <= 60 else text[:57] + '...'}"


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))


def _changed(before: list[Any], now: list[Any]) -> str:
    """How the items differ, in a few words."""
    if len(before) != len(now):
        return f"{len(before)} item(s) then, {len(now)} now"
    k = next(i for i, (a, b) in enumerate(zip(before, now, strict=True)) if a != b)
    return f"item {k} was {_json(before[k])}, is {_json(now[k])}"


def _done_at(earlier: LoopDone | None, shown: list[Any], forced: bool) -> dict[int, IterationDone]:
    """Iterations done earlier, by their place in this list: the same places;
    or (--force, the list changed) the places of the same items, each once."""
    if earlier is None:
        return {}
    if not forced:
        return earlier.done
    by_item: dict[str, list[IterationDone]] = {}
    for _, done in sorted(earlier.done.items()):
        by_item.setdefault(_json(done.item), []).append(done)
    out: dict[int, IterationDone] = {}
    for k, item in enumerate(shown):
        same = by_item.get(_json(item))
        if same:
            out[k] = same.pop(0)
    return out


class _Loop:
    """One run of a looped step: its items, what each iteration did."""

    def __init__(self, run: Steps, ps: PlannedStep, in_block: bool, scope: dict[str, Any]):
        self.run, self.ps, self.in_block, self.scope = run, ps, in_block, scope
        self.lent = scope is run.runtime.merged  # the run's own dict, lent to the step
        self.results: list[Result] = []
        self.outcomes: list[Outcome] = []
        self.stopped: Outcome | None = None
        self.earlier = 0  # iterations an earlier run completed

    def iterate(
        self, items: list[Any], shown: list[Any], done_at: dict[int, IterationDone]
    ) -> None:
        ps, run = self.ps, self.run
        var = ps.step.loop_var
        for k, item in enumerate(items):
            its = iteration_step(ps, k)
            values = {var: item, LOOP_INDEX: k}
            if self.lent:
                run.runtime.put(values)  # taken out again when the step gives the scope back
            else:
                self.scope.update(values)
            ident = {"iteration": k, "item": shown[k]}
            label = _label(var, shown[k])
            done = done_at.get(k)
            if done is not None:
                why = f"done in run {done.run_id}"
                self._once(
                    its,
                    Outcome(
                        ps.index,
                        its.number,
                        ps.name,
                        ps.kind,
                        Status.SKIPPED,
                        reason=why,
                        key=ps.step.key,
                    ),
                    ident,
                    label,
                )
                self.results.append(done.result or SkippedResult(why))
                self.earlier += 1
                continue
            outcome = self._one(its, ident, label, values)
            if outcome.status in STOPPING and self._stops(outcome):
                self.stopped = outcome
                break

    def _one(
        self, its: PlannedStep, ident: dict[str, Any], label: str, values: dict[str, Any]
    ) -> Outcome:
        """Run one iteration; record and report how it ended."""
        run, ps, scope = self.run, self.ps, self.scope
        when = ps.step.when
        try:
            if when is not None and not (
                when if isinstance(when, bool) else template.evaluate_all(when, scope)
            ):
                shown = str(when) if isinstance(when, bool) else " and ".join(when)
                reason = f"when: {shown} is false"
                return self._skipped(its, reason, ident, label)
        except (TemplateError, StepError) as exc:
            return self._refused(its, exc, ident, label)
        ended = action.run_action(run, its, scope, self.in_block, ident)
        if isinstance(ended, action.Ran):
            outcome = self._mark(ended.outcome, ident, label)
            run.end(
                its,
                ended.seq,
                outcome,
                ended.registered,
                pending=self.in_block,
                durable=ended.durable,
                decide=False,
                counted=False,
            )
            if outcome.status in (Status.OK, Status.GATE_FAILED) and run.state.undoing is None:
                keep = dict(scope) if ps.rollback else {}
                run.state.completed.append(
                    Done(its, keep, run.info.id, ended.seq, ident["iteration"], dict(values))
                )
            registered = ended.registered
            self.results.append(
                registered if isinstance(registered, Result) else SkippedResult(outcome.reason)
            )
            self.outcomes.append(outcome)
            return outcome
        if isinstance(ended, action.Shown):
            self._once(its, ended.outcome, ident, label)
            self.results.append(SkippedResult(ended.outcome.reason))
            return ended.outcome
        if isinstance(ended, action.Refused):
            return self._refused(its, ended.error, ident, label)
        return self._skipped(its, ended.reason, ident, label)

    def _mark(self, outcome: Outcome, ident: dict[str, Any], label: str) -> Outcome:
        outcome.iteration, outcome.item, outcome.item_label = (
            ident["iteration"],
            ident["item"],
            label,
        )
        if self.run.state.undoing is not None:
            outcome.undoes = self.run.state.undoing
        return outcome

    def _once(self, its: PlannedStep, outcome: Outcome, ident: dict[str, Any], label: str) -> None:
        """An iteration that did not run, or could not start: one record."""
        self._mark(outcome, ident, label)
        self.run.recorder.step_skipped(its, outcome, ident)
        self.run.reporter.step_finished(outcome)
        self.outcomes.append(outcome)

    def _skipped(self, its: PlannedStep, reason: str, ident: dict[str, Any], label: str) -> Outcome:
        ps = self.ps
        outcome = Outcome(
            ps.index, its.number, ps.name, ps.kind, Status.SKIPPED, reason=reason, key=ps.step.key
        )
        self._once(its, outcome, ident, label)
        self.results.append(SkippedResult(reason))
        return outcome

    def _refused(
        self, its: PlannedStep, error: BaseException, ident: dict[str, Any], label: str
    ) -> Outcome:
        outcome = self.run.failure(its, error, time.perf_counter(), 0)
        self._once(its, outcome, ident, label)
        self.results.append(SkippedResult(outcome.reason))
        return outcome

    def _stops(self, outcome: Outcome) -> bool:
        """Whether a failed iteration ends the loop: as the core decides for a step."""
        run, ps = self.run, self.ps
        if run.state.undoing is not None or outcome.status is Status.DECLINED:
            return True
        if (outcome.error or "").startswith("interrupted") or run.session.lost:
            return True
        policy = ps.step.on_failure or ps.playbook.on_failure
        if outcome.status is Status.GATE_FAILED:
            policy = strictest(ps, {g.name for g in outcome.gates if not g.passed}, policy)
        return policy != "continue"

    def summary(self, total: int, started: float, changed: str) -> Outcome:
        """The step's own outcome: how its iterations ended, counted."""
        ps = self.ps
        bad = [o for o in self.outcomes if o.status in STOPPING]
        decisive = self.stopped or next(
            (o for status in _WORST_FIRST for o in bad if o.status is status), None
        )
        ok = sum(1 for o in self.outcomes if o.status is Status.OK)
        ran = self.earlier or any(o.status is not Status.SKIPPED for o in self.outcomes)
        status = decisive.status if decisive else Status.OK if ran or not total else Status.SKIPPED
        note = f"{ok + self.earlier} of {total} iteration(s) ok"
        if self.earlier:
            note += f" ({self.earlier} in an earlier run)"
        if bad:
            note += f", {len(bad)} failed"
        reached = len(self.results)
        if reached < total:
            note += f", {total - reached} not run"
        if changed:
            note += f"; items changed since the earlier run ({changed}), --force"
        gates: dict[str, GateOutcome] = {}
        for o in bad:
            for gate in o.gates:
                if not gate.passed:
                    gates.setdefault(gate.name, gate)
        outcome = Outcome(
            ps.index,
            ps.number,
            ps.name,
            ps.kind,
            status,
            reason=f"iteration {decisive.iteration} ({decisive.item_label}) "
            f"{decisive.status.value}: {decisive.reason}"
            if decisive
            else _skip_reason(self.outcomes)
            if status is Status.SKIPPED
            else "",
            duration_ms=(time.perf_counter() - started) * 1000,
            severity=self.run.gates.worst(o.severity for o in self.outcomes),
            error=decisive.error if decisive else None,
            sqlstate=decisive.sqlstate if decisive else None,
            gates=list(gates.values()),
            key=ps.step.key,
            note=note,
            iterations=self.outcomes,
        )
        return outcome


def _skip_reason(outcomes: list[Outcome]) -> str:
    """Why no iteration ran: their one reason, if they share it."""
    reasons = {o.reason for o in outcomes}
    return f"no iteration ran: {reasons.pop()}" if len(reasons) == 1 else "no iteration ran"


def run_loop(run: Steps, ps: PlannedStep, in_block: bool, scope: dict[str, Any]) -> None:
    """Run a looped step: its iterations, then its summary, which the core decides on."""
    try:
        items = items_of(ps, scope)
    except (TemplateError, StepError) as exc:
        run.fail_before_start(ps, exc)
        return
    shown = run.redactor.value(to_json(items))  # as journaled, and compared on resume
    resume = run.options.resume
    earlier = (
        resume.loops.get(ps.index) if resume is not None and run.state.undoing is None else None
    )
    changed = ""
    if earlier is not None and earlier.items is not None and earlier.items != shown:
        changed = _changed(earlier.items, shown)
        if resume is not None and not resume.force:
            run.fail_before_start(
                ps,
                StepError(
                    f"{ps.step.loc}: loop: the items are not those run {resume.parent} "
                    f"looped over ({changed}); resuming at an iteration of another list "
                    "could skip or repeat work: check the target, then `runbook resume "
                    f"{run.info.id} --force` to loop over the new list, skipping the items "
                    "done before (recorded)"
                ),
            )
            return
    extra: dict[str, Any] = {"loop_items": shown}
    if changed:
        extra["loop_changed"] = changed
    seq = run.recorder.step_started(ps, undoes=run.state.undoing, extra=extra, durable=False)
    started = time.perf_counter()
    loop = _Loop(run, ps, in_block, scope)
    loop.iterate(items, shown, _done_at(earlier, shown, bool(changed)))
    outcome = loop.summary(len(items), started, changed)
    failed = sum(1 for o in loop.outcomes if o.status in STOPPING)
    result = LoopResult(loop.results, items, failed, outcome.duration_ms)
    outcome.result = result.serialize(run.options.row_sample)
    if ps.step.register:
        # Later steps see the summary; a loop only shown (--check) is a step
        # that did not run, for the gates that use it.
        shown_only = items and all(isinstance(r, SkippedResult) for r in loop.results)
        kept = SkippedResult("no iteration ran") if shown_only and run.options.check else result
        run.runtime[ps.step.register] = kept
    outcome = failures.redacted(outcome, run.redactor)
    run.end(ps, seq, outcome, result, pending=in_block)
