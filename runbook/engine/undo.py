"""The rollback phase: undo completed steps in reverse order.

A completed step with `rollback:` steps is undone by running them (with the
variables it and later steps registered, e.g. a constraint definition captured
before the drop); it is then recorded `rolled_back`. A transaction block or
include without rollback steps of its own is undone through its steps. A step
that may have changed something but says nothing about undoing it is reported.
If a rollback step fails, undoing stops there and the run says exactly which
steps remain un-undone.
"""

from __future__ import annotations

from runbook.actions import writes
from runbook.engine.ports import Steps
from runbook.engine.state import Done
from runbook.outcome import Status


def _writes(done: Done) -> bool:
    ps = done.ps
    return writes(ps.step)


def undo_completed(run: Steps) -> str:
    """Undo the completed steps, latest first; says what was (and was not) undone."""
    todo = list(reversed(run.state.completed))
    covered: set[int] = set()
    undone: list[str] = []
    cannot: list[str] = []
    for i, done in enumerate(todo):
        ps = done.ps
        if ps.index in covered:
            continue
        if ps.rollback:
            if done.iteration is None:  # a loop's iterations are undone one by one
                covered.update(node.index for node in ps.walk())
            if not _undo_step(run, done):
                left = [done, *(d for d in todo[i + 1 :] if d.ps.index not in covered)]
                remaining = [
                    f"{d.ps.number} {d.ps.name!r}" for d in left if d.ps.rollback or _writes(d)
                ]
                how = "interrupted (Ctrl-C)" if run.state.undo_interrupted else "failed"
                return (
                    f"rollback {how} while undoing step {ps.number} {ps.name!r}; "
                    f"not undone: {', '.join(remaining)}"
                )
            undone.append(ps.number)
        elif _writes(done):
            number = ps.number if done.iteration is None else ps.number.partition("[")[0]
            if f"{number} {ps.name!r}" not in cannot:  # once for all of a loop's iterations
                cannot.append(f"{number} {ps.name!r}")
    parts = [f"undone: step(s) {', '.join(undone)}" if undone else "nothing to undo"]
    if cannot:
        parts.append(f"no rollback steps for: {', '.join(cannot)}")
    return "; ".join(parts)


def _undo_step(run: Steps, done: Done) -> bool:
    """Run the rollback steps of one completed step; False if one failed."""
    state = run.state
    ps = done.ps
    state.undoing = ps.index
    state.undo_failed = False
    # The rollback steps of a loop's iteration see its item and loop_index,
    # and their records say which iteration they undo.
    run.recorder.undoing_iteration = done.iteration
    try:
        layer = {**done.scope, **run.runtime, **done.own}
        resume = run.options.resume
        if resume is None:
            already: set[int] = set()
        elif done.iteration is None:
            already = resume.undo_done.get(ps.index, set())
        else:
            already = resume.undo_iter_done.get((ps.index, done.iteration), set())
        for undo in ps.rollback:
            if undo.index in already:
                run.skip_tree(undo, "undone in an earlier run")
                continue
            run.run_planned(undo, (layer,), False)
            if state.undo_failed:
                return False
    finally:
        state.undoing = None
        run.recorder.undoing_iteration = None
    if run.options.check:
        return True  # shown, not run: nothing was undone
    numbers = ", ".join(u.number for u in ps.rollback)
    change = {"status": Status.ROLLED_BACK.value, "reason": f"undone by step(s) {numbers}"}
    if done.seq is not None:
        run.recorder.steps_updated([(done.seq, change)], "step.rolled_back", run_id=done.run_id)
    outcome = state.outcomes.get(ps.index)
    if outcome is not None and done.iteration is not None:
        # The iteration's own outcome is what was undone, not the loop's summary.
        outcome = next((o for o in outcome.iterations if o.iteration == done.iteration), None)
    if outcome is not None and outcome.undoes is None:
        outcome.status = Status.ROLLED_BACK
        outcome.reason = change["reason"]
        run.reporter.step_finished(outcome)  # shown again, now rolled back
    return True
