"""`runbook resume RUN_ID` and `runbook rollback RUN_ID`: continue or undo a run.

Both read what the run (and the runs it resumed) completed from the journal.
A step the crash caught in flight is decided by the server: its transaction id
was recorded before it ran, and `txid_status` says whether it committed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook import reconcile, results
from runbook.clock import Clock
from runbook.commands import run as run_cmd
from runbook.context import Prompter
from runbook.db import ConnectSpec, Session
from runbook.engine import Reporter, Resume
from runbook.errors import UsageError
from runbook.journal import Journal
from runbook.model import Inventory
from runbook.outcome import RunOutcome, RunStatus
from runbook.plan import Plan
from runbook.redact import MASK

_UNFINISHED = {"failed", "gate_failed", "interrupted", "rollback_failed"}


@dataclass
class Earlier:
    """An earlier run as the journal tells it, with what it (and its parents) completed."""

    run: dict[str, Any]
    chain: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    done: dict[int, tuple[str, int | None]] = field(default_factory=dict)
    steps: dict[int, dict[str, Any]] = field(default_factory=dict)  # latest record per index
    in_flight: dict[int, dict[str, Any]] = field(default_factory=dict)
    # Steps that ran to the end but whose gate failed: their change is in.
    gate_failed: dict[int, dict[str, Any]] = field(default_factory=dict)


def _chain(journal: Journal, run: dict[str, Any]) -> list[dict[str, Any]]:
    chain = [run]
    while chain[0]["mode"] == "resume" and chain[0]["parent_run"]:
        parent = journal.run(chain[0]["parent_run"])
        if parent is None:
            break
        chain.insert(0, parent)
    return chain


def read_earlier(journal: Journal, run_id: str) -> Earlier:
    reconcile.mark_dead_runs(journal, Clock())
    run = journal.run(run_id)
    if run is None:
        raise UsageError(f"no run {run_id!r} in the journal (or the prefix is ambiguous)")
    earlier = Earlier(run, _chain(journal, run))
    for each in earlier.chain:
        for step in each["steps"]:
            if step["phase"] != "main" or step["idx"] is None:
                continue
            index = step["idx"]
            if step["status"] == "ok":
                earlier.done[index] = (each["id"], step["seq"])
                earlier.steps[index] = step
                earlier.in_flight.pop(index, None)
                earlier.gate_failed.pop(index, None)
            elif step["status"] == "rolled_back":
                earlier.done.pop(index, None)
                earlier.gate_failed.pop(index, None)
            elif step["status"] == "gate_failed" and index not in earlier.done:
                earlier.gate_failed[index] = {**step, "run_id": each["id"]}
            elif (
                step.get("xid")
                and step["status"] in ("failed", "running")
                and index not in earlier.done
            ):
                earlier.in_flight[index] = {**step, "run_id": each["id"]}
    return earlier


def _playbook_check(run: dict[str, Any], force: bool) -> str | None:
    path = Path(run["playbook_path"])
    try:
        digest = hashlib.sha256(path.read_text("utf-8").encode("utf-8")).hexdigest()
    except OSError as exc:
        raise UsageError(
            f"cannot read the playbook of run {run['id']} ({path}): {exc.strerror}"
        ) from None
    if digest == run["playbook_sha256"]:
        return None
    change = f"{path} changed since run {run['id']}: sha256 {run['playbook_sha256'][:12]}… then, {digest[:12]}… now"
    if not force:
        raise UsageError(
            f"{change}; refusing to continue with a different playbook (--force to do it anyway)"
        )
    return change


def _runtime(earlier: Earlier) -> dict[str, Any]:
    """Registered results and `set` values of completed steps, from the journal."""
    runtime: dict[str, Any] = {}
    for index in sorted(earlier.done):
        step = earlier.steps.get(index)
        if step is None:
            continue
        data = step.get("registered") or step.get("result")
        if not data:
            continue
        result = results.restore(data)
        if step["kind"] == "set" and isinstance(result, results.ValueResult):
            runtime.update(result.values)
        if step.get("register_name"):
            runtime[step["register_name"]] = result
    return runtime


def _extra(run: dict[str, Any], given: tuple[str, ...]) -> tuple[str, ...]:
    """The run's -e values again (secrets were not kept: they must be given anew)."""
    import json

    kept = {k: v for k, v in (run.get("extra") or {}).items() if v != MASK}
    return (json.dumps(kept, default=str), *given) if kept else given


def _settle_in_flight(
    earlier: Earlier, prepared: run_cmd.Prepared, inventory: Inventory, journal: Journal
) -> None:
    """Ask the server whether the steps caught by the crash committed."""
    if not earlier.in_flight:
        return
    target = prepared.targets[0]
    secrets: set[str] = set()
    dsn, _ = run_cmd.resolve_dsn(target, inventory.root, secrets)
    session = Session(ConnectSpec(target.name, dsn, "runbook/resume", read_only=True))
    try:
        from runbook.recorder import Recorder
        from runbook.redact import Redactor

        recorder = Recorder(journal, Redactor(secrets), Clock())
        try:
            for index, step in sorted(earlier.in_flight.items()):
                status = session.txid_status(step["xid"])
                if status == "in progress":
                    raise UsageError(
                        f"step {step['number']} {step['name']!r} of run {step['run_id']} is still running on "
                        f"{target.name} (transaction {step['xid']}); wait for it, or cancel its backend, then resume"
                    )
                if status == "committed":
                    earlier.done[index] = (step["run_id"], step["seq"])
                    earlier.steps[index] = step
                    reason = f"committed before the run was interrupted (transaction {step['xid']})"
                    recorder.steps_updated(
                        [(step["seq"], {"status": "ok", "reason": reason})],
                        "step.committed",
                        run_id=step["run_id"],
                    )
        finally:
            recorder.close()
    finally:
        session.close()


def _plan(prepared: run_cmd.Prepared) -> Plan:
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
    # `register` names of completed steps, for restoring their results.
    for index, step in earlier.steps.items():
        ps = by_index.get(index)
        if ps is not None and ps.step.register:
            step["register_name"] = ps.step.register


def _request(
    earlier: Earlier, inventory_path: Path | None, extra: tuple[str, ...], force: bool
) -> run_cmd.Request:
    run = earlier.run
    selection = run.get("selection") or {}
    return run_cmd.Request(
        playbook=Path(run["playbook_path"]),
        inventory=inventory_path,
        targets=(run["target"],),
        extra=_extra(run, extra),
        tags=frozenset(selection.get("tags", ())),
        skip_tags=frozenset(selection.get("skip_tags", ())),
        parent_run=run["id"],
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
) -> list[RunOutcome]:
    inventory = run_cmd.load_inventory(inventory_path, Path.cwd())
    journal = run_cmd.open_journal(inventory)
    try:
        earlier = read_earlier(journal, run_id)
        run = earlier.run
        if run["status"] == "running":
            raise UsageError(
                f"run {run['id']} is still running (pid {run['pid']} on {run['host']})"
            )
        if run["mode"] in ("check", "rehearse", "rollback"):
            raise UsageError(f"run {run['id']} was a {run['mode']}: there is nothing to resume")
        if run["status"] not in _UNFINISHED:
            raise UsageError(
                f"run {run['id']} finished {run['status']}: there is nothing to resume"
            )
        req = _request(earlier, inventory_path, extra, force)
        req.mode, req.yes = "resume", yes
        prepared = run_cmd.prepare(req)
        _settle_in_flight(earlier, prepared, inventory, journal)
        _expand_done(earlier, _plan(prepared))
        req.resume = Resume(run["id"], earlier.done, _runtime(earlier))
    finally:
        journal.close()
    return run_cmd.run(req, make_reporter, prompter, notifier_for)


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
            earlier.done[index] = (step["run_id"], step["seq"])
            earlier.steps[index] = step


def _undo_lines(earlier: Earlier) -> list[str]:
    """What `runbook rollback` would undo, as lines for a person to confirm."""
    return [
        f"step {step['number']} {step['name']!r} (run {earlier.done[index][0]})"
        for index, step in sorted(earlier.steps.items(), reverse=True)
        if index in earlier.done
    ]


def rollback(
    run_id: str,
    inventory_path: Path | None,
    extra: tuple[str, ...],
    force: bool,
    check: bool,
    confirm: Callable[[list[str]], bool],
    make_reporter: Callable[[], Reporter],
    prompter: Prompter | None,
) -> list[RunOutcome]:
    inventory = run_cmd.load_inventory(inventory_path, Path.cwd())
    journal = run_cmd.open_journal(inventory)
    try:
        earlier = read_earlier(journal, run_id)
    finally:
        journal.close()
    run = earlier.run
    if run["status"] == "running":
        raise UsageError(f"run {run['id']} is still running (pid {run['pid']} on {run['host']})")
    if run["status"] == "rolled_back":
        raise UsageError(f"run {run['id']} was already rolled back")
    if run["mode"] in ("check", "rehearse", "rollback"):
        raise UsageError(f"run {run['id']} was a {run['mode']}: it changed nothing to roll back")
    req = _request(earlier, inventory_path, extra, force)
    req.mode, req.check, req.undo_only, req.yes = "rollback", check, True, True
    prepared = run_cmd.prepare(req)
    the_plan = _plan(prepared)
    _add_gate_failed(earlier, the_plan)
    if not earlier.done:
        raise UsageError(f"run {run['id']} completed no step: there is nothing to roll back")
    if not check and not confirm(_undo_lines(earlier)):
        raise UsageError("rollback not confirmed (answer yes, or pass --yes)")
    _expand_done(earlier, the_plan)
    req.resume = Resume(run["id"], earlier.done, _runtime(earlier))
    outcomes = run_cmd.run(req, make_reporter, prompter)
    if outcomes and outcomes[0].status is RunStatus.ROLLED_BACK and not check:
        _mark_rolled_back(run["id"], outcomes[0].run_id, inventory_path)
    return outcomes


def _mark_rolled_back(run_id: str, by: str, inventory_path: Path | None) -> None:
    from runbook.recorder import Recorder
    from runbook.redact import Redactor

    inventory = run_cmd.load_inventory(inventory_path, Path.cwd())
    journal = run_cmd.open_journal(inventory)
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
