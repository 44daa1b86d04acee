"""What an earlier run did, as the journal and the target tell it.

A run and the runs that continued it (resumes, rollbacks — each claimed once,
see `runs.continues`) form a lineage; what it completed is read from all of
them, oldest first. A step a crash caught in flight is decided by the target:
its marker row exists if and only if its transaction committed
(`runbook.pg.marker`). A step that cannot be transactional and was caught is
`unknown`: the operator (or the step's `on_unknown`) decides, never a guess.
Undo steps get the same bookkeeping, so an interrupted undo is continued, not
repeated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from runbook.clock import Clock
from runbook.engine.outside import non_transactional
from runbook.errors import RunbookError, UsageError
from runbook.journal import reconcile
from runbook.journal.recorder import Recorder
from runbook.journal.records import RunMode, RunRecord, StepRecord
from runbook.journal.store import JournalStore
from runbook.outcome import RunStatus, Status
from runbook.pg.db import Session
from runbook.pg.marker import Fate
from runbook.plan import Plan

UNFINISHED = {
    RunStatus.FAILED,
    RunStatus.GATE_FAILED,
    RunStatus.INTERRUPTED,
    RunStatus.ROLLBACK_FAILED,
    RunStatus.DECLINED,
    RunStatus.AWAITING_APPROVAL,
    RunStatus.UNREACHABLE,
    RunStatus.NOT_RUN,
}
# Asked of the operator for each step whose outcome is unknown: halt, rerun or skip.
Decide = Callable[[StepRecord], str | None]
# (index of the step undone, index of the rollback step, iteration undone or -1)
UndoKey = tuple[int, int, int]
IterKey = tuple[int, int]  # (index of a looped step, iteration)


class UnknownOutcome(RunbookError):
    """A step caught mid-flight could have taken effect or not: nobody decided (exit 3)."""


@dataclass
class Earlier:
    """An earlier run's lineage as the journal tells it, and what it completed."""

    run: RunRecord
    lineage: list[RunRecord] = field(default_factory=list)  # oldest first
    done: dict[int, tuple[str, int | None]] = field(default_factory=dict)
    steps: dict[int, StepRecord] = field(default_factory=dict)  # latest record per index
    in_flight: dict[int, StepRecord] = field(default_factory=dict)
    # Steps that ran to the end but whose gate failed: their change is in.
    gate_failed: dict[int, StepRecord] = field(default_factory=dict)
    # Steps that may have acted outside any transaction when a crash caught them.
    unknown: dict[int, StepRecord] = field(default_factory=dict)
    # Undo steps already committed, and those a crash caught, per step undone.
    undo_done: dict[int, set[int]] = field(default_factory=dict)
    undo_in_flight: dict[UndoKey, StepRecord] = field(default_factory=dict)
    undo_unknown: dict[UndoKey, StepRecord] = field(default_factory=dict)
    # Tracked steps a crash caught that had no marker row to ask: unknown for that reason.
    unmarked: set[int] = field(default_factory=set)
    undo_unmarked: set[UndoKey] = field(default_factory=set)
    # Looped steps: the items each last recorded, and their iterations as the
    # steps above (done, caught in flight, unknown, gate failed, unmarked), and undone.
    loop_items: dict[int, list[Any]] = field(default_factory=dict)
    iter_done: dict[IterKey, StepRecord] = field(default_factory=dict)
    iter_in_flight: dict[IterKey, StepRecord] = field(default_factory=dict)
    iter_unknown: dict[IterKey, StepRecord] = field(default_factory=dict)
    iter_gate_failed: dict[IterKey, StepRecord] = field(default_factory=dict)
    iter_unmarked: set[IterKey] = field(default_factory=set)
    undo_iter_done: dict[IterKey, set[int]] = field(default_factory=dict)

    @property
    def last(self) -> RunRecord:
        return self.lineage[-1] if self.lineage else self.run

    @property
    def subject(self) -> RunRecord:
        """The run whose steps are continued or undone: the last that was not a rollback."""
        return next((r for r in reversed(self.lineage) if r.mode is not RunMode.ROLLBACK), self.run)

    @property
    def undoing(self) -> bool:
        """An undo was under way when the lineage stopped: continue it, not the steps."""
        if self.last.mode is RunMode.ROLLBACK:
            return True
        return (
            any(index in self.done for index in self.undo_done)
            or any(key in self.iter_done for key in self.undo_iter_done)
            or any(
                (key[0], key[2]) in self.iter_done if key[2] >= 0 else key[0] in self.done
                for key in (*self.undo_in_flight, *self.undo_unknown)
            )
        )

    def undo_finished(self, key: UndoKey) -> None:
        """Rollback step `key[1]` of `key[0]` (of its iteration `key[2]`) committed."""
        if key[2] < 0:
            self.undo_done.setdefault(key[0], set()).add(key[1])
        else:
            self.undo_iter_done.setdefault((key[0], key[2]), set()).add(key[1])

    def undo_was_finished(self, key: UndoKey) -> bool:
        if key[2] < 0:
            return key[1] in self.undo_done.get(key[0], ())
        return key[1] in self.undo_iter_done.get((key[0], key[2]), ())


def _continued(run: RunRecord) -> str | None:
    return run.continues or (run.parent_run if run.mode is RunMode.RESUME else None)


def lineage(journal: JournalStore, run: RunRecord) -> list[RunRecord]:
    """The run, the runs it continued and the runs that continued it, oldest first."""
    chain = [run]
    seen = {run.id}
    while (parent_id := _continued(chain[0])) and parent_id not in seen:
        parent = journal.run(parent_id)
        if parent is None:
            break
        chain.insert(0, parent)
        seen.add(parent_id)
    while (after := journal.continuation(chain[-1].id)) and after.id not in seen:
        full = journal.run(after.id)
        if full is None:
            break
        chain.append(full)
        seen.add(after.id)
    return chain


def _caught(step: StepRecord) -> bool:
    """Recorded as caught mid-flight: unknown, or interrupted with no marker to ask."""
    if step.status is Status.UNKNOWN:
        return True
    reason = str(step.reason or step.error or "")
    return step.status in (Status.FAILED, Status.RUNNING) and reason.startswith("interrupted")


def _tracked(step: StepRecord) -> bool:
    return bool(step.marker or step.xid)


def read_earlier(journal: JournalStore, run_id: str) -> Earlier:
    reconcile.mark_dead_runs(journal, Clock())
    run = journal.run(run_id)
    if run is None:
        raise UsageError(f"no run {run_id!r} in the journal (or the prefix is ambiguous)")
    earlier = Earlier(run, lineage(journal, run))
    for each in earlier.lineage:
        for recorded in each.steps or ():
            index = recorded.idx
            if index is None:
                continue
            step = replace(recorded, run_id=each.id)
            if step.phase == "main" and step.iteration is not None:
                _fold_iteration(earlier, step, (index, step.iteration))
            elif step.phase == "main":
                _fold_main(earlier, step, index)
            elif step.undoes is not None:
                iteration = -1 if step.undoes_iteration is None else step.undoes_iteration
                _fold_undo(earlier, step, (step.undoes, index, iteration))
    return earlier


def _fold_main(earlier: Earlier, step: StepRecord, index: int) -> None:
    status = step.status
    if step.loop_items is not None:
        # A looped step's summary: its iterations say what is done, caught or
        # unknown; the summary only whether all of it is, and over which items.
        earlier.loop_items[index] = step.loop_items
        if status not in (Status.OK, Status.ROLLED_BACK):
            return
    if status is Status.OK:
        earlier.done[index] = (step.run_id, step.seq)
        earlier.steps[index] = step
        for pending in (earlier.in_flight, earlier.gate_failed, earlier.unknown):
            pending.pop(index, None)
    elif status is Status.ROLLED_BACK:
        earlier.done.pop(index, None)
        earlier.gate_failed.pop(index, None)
        earlier.undo_done.pop(index, None)
    elif index in earlier.done:
        return
    elif status is Status.UNKNOWN and step.decision == "skip":
        earlier.done[index] = (step.run_id, step.seq)  # the operator said it took effect
        earlier.steps[index] = step
        earlier.unknown.pop(index, None)
    elif status is Status.GATE_FAILED:
        earlier.gate_failed[index] = step
    elif _tracked(step) and status in (Status.FAILED, Status.RUNNING):
        earlier.in_flight[index] = step
    elif _caught(step):
        earlier.unknown[index] = step
    elif status is Status.FAILED:
        earlier.unknown.pop(index, None)  # a later attempt failed on its own: it ran again


def _fold_iteration(earlier: Earlier, step: StepRecord, key: IterKey) -> None:
    """One iteration of a looped step, folded as `_fold_main` folds a step."""
    status = step.status
    if status is Status.OK or (status is Status.UNKNOWN and step.decision == "skip"):
        earlier.iter_done[key] = step
        for pending in (earlier.iter_in_flight, earlier.iter_unknown, earlier.iter_gate_failed):
            pending.pop(key, None)
    elif status is Status.ROLLED_BACK:
        earlier.iter_done.pop(key, None)
        earlier.iter_gate_failed.pop(key, None)
        earlier.undo_iter_done.pop(key, None)
    elif key in earlier.iter_done:
        return
    elif status is Status.GATE_FAILED:
        earlier.iter_gate_failed[key] = step
    elif _tracked(step) and status in (Status.FAILED, Status.RUNNING):
        earlier.iter_in_flight[key] = step
    elif _caught(step):
        earlier.iter_unknown[key] = step
    elif status is Status.FAILED:
        earlier.iter_unknown.pop(key, None)


def _fold_undo(earlier: Earlier, step: StepRecord, key: UndoKey) -> None:
    if step.status is Status.OK:
        earlier.undo_finished(key)
        earlier.undo_in_flight.pop(key, None)
        earlier.undo_unknown.pop(key, None)
    elif earlier.undo_was_finished(key):
        return
    elif _tracked(step) and step.status in (Status.FAILED, Status.RUNNING):
        earlier.undo_in_flight[key] = step
    elif _caught(step):
        earlier.undo_unknown[key] = step


def _ask_target(session: Session, step: StepRecord, target: str) -> Fate | None:
    """The fate of a tracked step's transaction; None if it had no marker to ask."""
    if not step.marker:
        return None
    fate = session.step_fate(step.marker)
    if fate is Fate.IN_PROGRESS:
        raise UsageError(
            f"step {step.number} {step.name!r} of run {step.run_id} is still running on "
            f"{target} (its transaction has not ended); wait for it, or cancel its backend, then resume"
        )
    return fate


def settle(earlier: Earlier, session: Session, recorder: Recorder, target: str) -> None:
    """Decide, by the target's marker rows, the tracked steps a crash caught."""
    for index, step in sorted(earlier.in_flight.items()):
        fate = _ask_target(session, step, target)
        if fate is None:  # no marker (a role that cannot write one, an old journal)
            earlier.unknown[index] = step
            earlier.unmarked.add(index)
            continue
        if fate is Fate.COMMITTED:
            earlier.done[index] = (step.run_id, step.seq)
            earlier.steps[index] = step
        _record_fate(recorder, step, fate)
    earlier.in_flight.clear()
    for iter_key, step in sorted(earlier.iter_in_flight.items()):
        fate = _ask_target(session, step, target)
        if fate is None:
            earlier.iter_unknown[iter_key] = step
            earlier.iter_unmarked.add(iter_key)
            continue
        if fate is Fate.COMMITTED:
            earlier.iter_done[iter_key] = replace(step, status=Status.OK)
        _record_fate(recorder, step, fate)
    earlier.iter_in_flight.clear()
    for key, step in sorted(earlier.undo_in_flight.items()):
        fate = _ask_target(session, step, target)
        if fate is None:
            earlier.undo_unknown[key] = step
            earlier.undo_unmarked.add(key)
            continue
        if fate is Fate.COMMITTED:
            earlier.undo_finished(key)
        _record_fate(recorder, step, fate)
    earlier.undo_in_flight.clear()


def _record_fate(recorder: Recorder, step: StepRecord, fate: Fate) -> None:
    if fate is Fate.COMMITTED:
        change = {"status": "ok", "reason": "committed before the run was interrupted (marker)"}
        kind = "step.committed"
    else:
        change = {"reason": "interrupted: its transaction never committed (no marker): run again"}
        kind = "step.not_committed"
    recorder.steps_updated([(step.seq, change)], kind, run_id=step.run_id)


def decide_unknown(
    earlier: Earlier, the_plan: Plan, decide: Decide, recorder: Recorder, operator: str
) -> None:
    """Each step whose outcome is unknown: rerun, skip (count as done) or halt.

    The operator's answer wins; else the step's `on_unknown`; else halt.
    """
    by_index = the_plan.by_index()
    halted: list[str] = []
    # Each case: the step, its index, and the undo or iteration it is (None: the step).
    cases: list[tuple[StepRecord, int, UndoKey | IterKey | None]] = [
        (step, index, None) for index, step in sorted(earlier.unknown.items())
    ]
    cases += [(step, key[1], key) for key, step in sorted(earlier.undo_unknown.items())]
    cases += [(step, key[0], key) for key, step in sorted(earlier.iter_unknown.items())]
    for step, index, key in cases:
        ps = by_index.get(index)
        if ps is None:
            continue
        if key is None:
            unmarked = index in earlier.unmarked
        elif len(key) == 2:  # an iteration of a looped step
            unmarked = (key[0], key[1]) in earlier.iter_unmarked
        else:
            unmarked = (key[0], key[1], key[2]) in earlier.undo_unmarked
        if step.status is not Status.UNKNOWN and not non_transactional(ps) and not unmarked:
            continue  # caught while reading, or with nothing outside a transaction: run again
        choice = decide(step) or ps.step.options.get("on_unknown") or "halt"
        if choice == "halt":
            halted.append(
                f"step {step.number} {step.name!r} (run {step.run_id}"
                f"{reconcile.statements_ended(step.statements)})"
            )
            continue
        by = f"decided by {operator}: {choice}"
        recorder.steps_updated(
            [(step.seq, {"status": "unknown", "decision": choice, "decided": by})],
            "step.unknown_decided",
            run_id=step.run_id,
        )
        if choice == "skip":
            if key is None:
                earlier.done[index] = (step.run_id, step.seq)
                earlier.steps[index] = step
            elif len(key) == 2:  # an iteration of a looped step
                earlier.iter_done[(key[0], key[1])] = step
            else:
                earlier.undo_finished((key[0], key[1], key[2]))
    if halted:
        raise UnknownOutcome(
            f"whether {', '.join(halted)} took effect is unknown: it was caught mid-flight and "
            "cannot be transactional. Check the target, then resume with --unknown rerun or "
            "--unknown skip (or set the step's on_unknown)"
        )
