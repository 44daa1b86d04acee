"""`runbook resume RUN_ID` and `runbook rollback RUN_ID`: continue or undo a run.

Both read what the run (and the runs it resumed) completed from the journal.
A step the crash caught in flight is decided by the target: its marker row
exists if and only if it committed (`runbook.commands.earlier`, `runbook.pg.marker`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runbook import consent, results, service
from runbook.clock import Clock
from runbook.commands import earlier as earlier_mod
from runbook.commands.earlier import UNFINISHED, Earlier, read_earlier
from runbook.context import Prompter
from runbook.engine import IterationDone, LoopDone, Reporter, Resume
from runbook.errors import Refused, UsageError
from runbook.fleet.fanout import Sessions
from runbook.journal.events import Conflict
from runbook.journal.records import RunMode, RunRecord
from runbook.journal.store import JournalStore
from runbook.model import Inventory
from runbook.outcome import RunOutcome, RunStatus
from runbook.pg.db import ConnectSpec, Session
from runbook.plan import Plan
from runbook.redact import MASK


def _playbook_check(run: RunRecord, force: bool) -> str | None:
    path = _playbook_path(run)
    try:
        digest = hashlib.sha256(path.read_text("utf-8").encode("utf-8")).hexdigest()
    except OSError as exc:
        raise UsageError(
            f"cannot read the playbook of run {run.id} ({path}): {exc.strerror}"
        ) from None
    if digest == run.playbook_sha256:
        return None
    then = (run.playbook_sha256 or "-")[:12]
    change = f"{path} changed since run {run.id}: sha256 {then}… then, {digest[:12]}… now"
    if not force:
        raise UsageError(
            f"{change}; refusing to continue with a different playbook (--force to do it anyway)"
        )
    return change


def _playbook_path(run: RunRecord) -> Path:
    if run.playbook_path is None:
        raise UsageError(f"run {run.id} recorded no playbook path: it cannot be run again")
    return Path(run.playbook_path)


def _runtime(earlier: Earlier, the_plan: Plan) -> dict[str, Any]:
    """Registered results and `set` values of completed steps, from the journal
    (under the `register` names the plan gives them)."""
    by_index = the_plan.by_index()
    runtime: dict[str, Any] = {}
    for index in sorted(earlier.done):
        step = earlier.steps.get(index)
        if step is None:
            continue
        data = step.registered or step.result
        if not data:
            continue
        result = results.restore(data)
        if step.kind == "set" and isinstance(result, results.ValueResult):
            runtime.update(result.values)
        ps = by_index.get(index)
        if ps is not None and ps.step.register:
            runtime[ps.step.register] = result
    return runtime


def _resume(parent: str, earlier: Earlier, the_plan: Plan, force: bool) -> Resume:
    """What the engine is told the lineage completed, looped steps' iterations too."""
    loops = {index: LoopDone(items) for index, items in earlier.loop_items.items()}
    for (index, k), step in sorted(earlier.iter_done.items()):
        data = step.registered or step.result
        loops.setdefault(index, LoopDone(None)).done[k] = IterationDone(
            step.run_id, step.seq, step.item, results.restore(data) if data else None
        )
    return Resume(
        parent,
        earlier.done,
        _runtime(earlier, the_plan),
        earlier.undo_done,
        loops=loops,
        undo_iter_done=earlier.undo_iter_done,
        force=force,
    )


def _extra(run: RunRecord, given: tuple[str, ...]) -> tuple[str, ...]:
    """The run's -e values again (secrets were not kept: they must be given anew)."""
    import json

    kept = {k: v for k, v in (run.extra or {}).items() if v != MASK}
    return (json.dumps(kept, default=str), *given) if kept else given


def _settle(
    earlier: Earlier,
    prepared: service.Prepared,
    inventory: Inventory,
    journal: JournalStore,
    decide: earlier_mod.Decide,
) -> None:
    """Ask the target about the steps a crash caught; the operator about unknown ones."""
    from runbook.journal.recorder import Recorder
    from runbook.redact import Redactor

    target = prepared.targets[0]
    secrets: set[str] = set()
    recorder = Recorder(journal, Redactor(secrets), Clock())
    try:
        if earlier.in_flight or earlier.undo_in_flight or earlier.iter_in_flight:
            dsn, _ = service.resolve_dsn(target, inventory.root, secrets)
            session = Session(ConnectSpec(target.name, dsn, "runbook/resume"))
            try:
                earlier_mod.settle(earlier, session, recorder, target.name)
            finally:
                session.close()
        if earlier.unknown or earlier.undo_unknown or earlier.iter_unknown:
            earlier_mod.decide_unknown(
                earlier, _plan(prepared), decide, recorder, service.operator()
            )
    finally:
        recorder.close()


def _claim(earlier: Earlier, verb: str) -> str:
    """The run a new resume or rollback continues; refuses a run already continued."""
    last = earlier.last
    if last.id == earlier.run.id:
        return str(last.id)
    how = "is being" if last.status is RunStatus.RUNNING else "was"
    then = (
        f"{verb} {last.id} instead"
        if last.status in UNFINISHED or verb == "roll back"
        else "there is nothing left to do"
    )
    raise UsageError(
        f"run {earlier.run.id} {how} continued by run {last.id} ({last.mode.value}, "
        f"{last.status.value}): a run is resumed or rolled back once; {then}"
    )


def _plan(prepared: service.Prepared) -> Plan:
    """The earlier run's whole plan (every step, whatever was selected)."""
    from runbook import plan

    target = prepared.targets[0]
    return plan.build(prepared.playbook, target, prepared.includes, plan.Selection())


def _expand_done(earlier: Earlier, the_plan: Plan) -> None:
    """A completed transaction block or include completed every step inside it."""
    by_index = the_plan.by_index()
    for index, (run_id, _seq) in list(earlier.done.items()):
        ps = by_index.get(index)
        if ps is not None and ps.kind == "transaction":
            for child in ps.walk():
                earlier.done.setdefault(child.index, (run_id, None))


def _request(
    run: RunRecord,
    parent: str,
    inventory_path: Path | None,
    extra: tuple[str, ...],
    force: bool,
) -> service.RunSpec:
    """Run `run`'s playbook again, as it was run (its -e values, tags, target)."""
    selection = run.selection or {}
    return service.RunSpec(
        playbook=_playbook_path(run),
        inventory=inventory_path,
        targets=(run.target,) if run.target is not None else (),
        extra=_extra(run, extra),
        tags=frozenset(selection.get("tags", ())),
        skip_tags=frozenset(selection.get("skip_tags", ())),
        start_at=selection.get("start_at"),
        parent_run=parent,
        forced=_playbook_check(run, force),
    )


def resume(
    run_id: str,
    inventory_path: Path | None,
    extra: tuple[str, ...],
    force: bool,
    yes: bool,
    make_reporter: Callable[[], Reporter],
    prompter: Prompter | None,
    notifier_for: Any = None,
    decide: earlier_mod.Decide = lambda step: None,
    confirm_targets: tuple[str, ...] = (),
    ask: consent.Ask | None = None,
    *,
    approval_wait: Any = None,
    break_glass: str | None = None,
    interrupts: Sessions | None = None,
) -> list[RunOutcome]:
    inventory = service.load_inventory(inventory_path, Path.cwd())
    journal = service.open_journal(inventory)
    try:
        earlier = read_earlier(journal, run_id)
        run = earlier.run
        continues = _claim(earlier, "resume")
        if run.status is RunStatus.RUNNING:
            raise UsageError(f"run {run.id} is still running (pid {run.pid} on {run.host})")
        if run.mode in (RunMode.CHECK, RunMode.REHEARSE):
            raise UsageError(f"run {run.id} was a {run.mode.value}: there is nothing to resume")
        if run.status not in UNFINISHED:
            raise UsageError(
                f"run {run.id} finished {run.status.value}: there is nothing to resume"
            )
        subject = earlier.subject
        req = _request(subject, run.id, inventory_path, extra, force)
        req.mode, req.yes, req.continues = "resume", yes, continues
        req.confirm_targets = confirm_targets
        req.break_glass = break_glass
        prepared = service.prepare(req)
        _settle(earlier, prepared, inventory, journal, decide)
        the_plan = _plan(prepared)
        if earlier.undoing:
            # Interrupted while undoing: the undo goes on where it stopped; the
            # steps after the halt stay not run.
            req.undo_only = True
            if run.mode is RunMode.ROLLBACK:
                req.mode = "rollback"
                _add_gate_failed(earlier, the_plan)
        _expand_done(earlier, the_plan)
        resume = _resume(subject.id, earlier, the_plan, force)
    finally:
        journal.close()
    outcomes = _run_claimed(
        req, resume, make_reporter, prompter, notifier_for, ask, approval_wait, interrupts
    )
    if req.mode == "rollback" and outcomes and outcomes[0].status is RunStatus.ROLLED_BACK:
        _mark_rolled_back(subject.id, outcomes[0].run_id, inventory_path)
    return outcomes


def _run_claimed(
    req: service.RunSpec,
    resume: Resume,
    make_reporter: Callable[[], Reporter],
    prompter: Prompter | None,
    notifier_for: Any = None,
    ask: consent.Ask | None = None,
    approval_wait: Any = None,
    interrupts: Sessions | None = None,
) -> list[RunOutcome]:
    """Run a resume or rollback; its run record claims the run it continues."""
    try:
        return service.run(
            req, make_reporter, prompter, notifier_for, resume=resume, ask=ask,
            approval_wait=approval_wait, interrupts=interrupts,
        )  # fmt: skip
    except Conflict:
        # Another resume or rollback inserted its claim between our check and ours.
        raise UsageError(
            f"run {req.continues} is being continued by another resume or rollback: "
            "a run is resumed or rolled back once (see runbook history)"
        ) from None


def _add_gate_failed(earlier: Earlier, the_plan: Plan) -> None:
    """A step whose own gate failed still made its change: undo it too, unless
    it ran inside a transaction block (whose failure took the change back)."""
    in_blocks = {
        child.index
        for ps in the_plan.walk()
        if ps.kind == "transaction"
        for child in ps.walk()
        if child is not ps
    }
    for index, step in earlier.gate_failed.items():
        if index not in in_blocks:
            earlier.done[index] = (step.run_id, step.seq)
            earlier.steps[index] = step
    for key, step in earlier.iter_gate_failed.items():
        if key[0] not in in_blocks:
            earlier.iter_done.setdefault(key, step)


def _undo_lines(earlier: Earlier) -> list[str]:
    """What `runbook rollback` would undo, as lines for a person to confirm."""
    lines = [
        (index, -1, f"step {step.number} {step.name!r} (run {earlier.done[index][0]})")
        for index, step in earlier.steps.items()
        if index in earlier.done and index not in earlier.loop_items
    ]
    lines += [
        (key[0], key[1], f"step {step.number} {step.name!r} (run {step.run_id})")
        for key, step in earlier.iter_done.items()
    ]
    return [line for _, _, line in sorted(lines, reverse=True)]


def rollback(
    run_id: str,
    inventory_path: Path | None,
    extra: tuple[str, ...],
    force: bool,
    check: bool,
    confirm: Callable[[list[str]], bool],
    make_reporter: Callable[[], Reporter],
    prompter: Prompter | None,
    decide: earlier_mod.Decide = lambda step: None,
    confirm_targets: tuple[str, ...] = (),
    ask: consent.Ask | None = None,
) -> list[RunOutcome]:
    inventory = service.load_inventory(inventory_path, Path.cwd())
    journal = service.open_journal(inventory)
    try:
        earlier = read_earlier(journal, run_id)
        run = earlier.run
        last = earlier.last
        if RunStatus.RUNNING in (run.status, last.status):
            busy = run if run.status is RunStatus.RUNNING else last
            raise UsageError(f"run {busy.id} is still running (pid {busy.pid} on {busy.host})")
        if RunStatus.ROLLED_BACK in (run.status, last.status):
            raise UsageError(f"run {run.id} was already rolled back")
        if run.mode in (RunMode.CHECK, RunMode.REHEARSE):
            raise UsageError(
                f"run {run.id} was a {run.mode.value}: it changed nothing to roll back"
            )
        # A rollback that stopped part way is continued by the next one; a run
        # that was resumed is rolled back through its last resume.
        if last.mode is not RunMode.ROLLBACK and not check:
            continues = _claim(earlier, "roll back")
        else:
            continues = last.id
        subject = earlier.subject
        req = _request(subject, subject.id, inventory_path, extra, force)
        # A dry run is journaled as one: its own mode, and the undone run's
        # status left alone (nothing was undone).
        req.mode = "rollback-check" if check else "rollback"
        req.check, req.undo_only, req.yes = check, True, True
        req.confirm_targets = confirm_targets
        req.continues = None if check else continues
        prepared = service.prepare(req)
        if not check:
            _settle(earlier, prepared, inventory, journal, decide)
    finally:
        journal.close()
    the_plan = _plan(prepared)
    _add_gate_failed(earlier, the_plan)
    if not earlier.done and not earlier.iter_done:
        raise UsageError(f"run {run.id} completed no step: there is nothing to roll back")
    if not check and not confirm(_undo_lines(earlier)):
        raise Refused("rollback not confirmed (answer yes, or pass --yes); nothing was undone")
    _expand_done(earlier, the_plan)
    resume = _resume(subject.id, earlier, the_plan, force)
    outcomes = _run_claimed(req, resume, make_reporter, prompter, ask=ask)
    if outcomes and outcomes[0].status is RunStatus.ROLLED_BACK and not check:
        _mark_rolled_back(subject.id, outcomes[0].run_id, inventory_path)
    return outcomes


def _mark_rolled_back(run_id: str, by: str, inventory_path: Path | None) -> None:
    from runbook.journal.recorder import Recorder
    from runbook.redact import Redactor

    inventory = service.load_inventory(inventory_path, Path.cwd())
    journal = service.open_journal(inventory)
    recorder = Recorder(journal, Redactor(), Clock())
    try:
        recorder.run_updated(
            run_id,
            {"status": "rolled_back", "reason": f"rolled back by run {by}"},
            "run.rolled_back",
        )
    finally:
        recorder.close()
        journal.close()
