"""Runs and steps into the journal: rows built from outcomes, secrets removed.

The engine calls these at each transition; each call is one atomic append.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook.clock import Clock
from runbook.journal.events import checkpoint_request
from runbook.journal.store import JournalStore
from runbook.journal.writer import Event
from runbook.outcome import (
    STATUS_TEXT,
    Outcome,
    RunOutcome,
    RunStatus,
    Status,
    statements_json,
)
from runbook.plan import Plan, PlannedStep
from runbook.redact import Redactor

REGISTERED_ROWS = 10_000  # rows of a registered result kept for resume

_RUNNING = Status.RUNNING.value


_OWN_LOCK = threading.Lock()
_own: tuple[int, float | None] | None = None  # (pid, start) of this process, once read


def process_started(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), or None if there is no such process.

    This process's own start is read once (every run records it, and so does
    the notifier: two reads of /proc a target in a fleet); a fork, whose pid
    differs, reads its own.
    """
    global _own
    if pid == os.getpid():
        with _OWN_LOCK:
            if _own is None or _own[0] != pid:
                _own = (pid, _read_started(pid))
            return _own[1]
    return _read_started(pid)


def _read_started(pid: int) -> float | None:
    """On Linux read from /proc as psutil does, without importing psutil (~8 ms of
    every run's start-up); elsewhere psutil."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        boot = next(
            line
            for line in Path("/proc/stat").read_bytes().splitlines()
            if line.startswith(b"btime")
        )
        # Fields after the command name, which may itself hold spaces and ")":
        # state is field 3 of proc(5), starttime (clock ticks after boot) field 22.
        ticks = int(stat[stat.rindex(b")") + 2 :].split()[19])
        return int(boot.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None  # /proc works, so the process is gone
    except (OSError, ValueError, IndexError, StopIteration):
        pass
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:
        return None


@dataclass
class RunRecord:
    id: str
    mode: str
    operator: str
    parent_run: str | None = None
    extra: dict[str, Any] | None = None  # -e values, for resume (secrets redacted)
    selection: dict[str, Any] | None = None  # targets, tags, skip_tags
    forced: str | None = None  # why a resume ran on a changed playbook
    continues: str | None = None  # the run this resume or rollback continues (claimed once)
    consent: dict[str, Any] | None = None  # who let it start: typed, flags, an authorization


def _sampled(result: dict[str, Any] | None, row_sample: int) -> dict[str, Any] | None:
    """A result as the journal keeps it: at most `row_sample` rows, whatever a
    step's max_rows lets the report show."""
    rows = None if result is None else result.get("rows")
    if result is None or not isinstance(rows, list) or len(rows) <= row_sample:
        return result
    return {**result, "rows": rows[:row_sample], "truncated": True}


class Recorder:
    def __init__(
        self, journal: JournalStore, redactor: Redactor, clock: Clock, row_sample: int = 20
    ) -> None:
        self.journal = journal
        self.redactor = redactor
        self.clock = clock
        self.row_sample = row_sample
        self.seq = 0
        self.run_id = ""
        # While the rollback steps of one iteration of a looped step run: that
        # iteration, kept on their records (resume tells the undos apart by it).
        self.undoing_iteration: int | None = None
        # Group commit on the store's writer thread (runbook.journal.writer),
        # shared with the other runs on the store (a fleet's targets).
        self._writer = journal.writer()
        self._ticket = 0  # of the last put: what `flush` waits for
        # The end of a read-only step waits for the next record, so that one
        # transaction carries both (one commit per step, not two).
        self._held: list[Event] = []

    def _append(self, events: list[Event], durable: bool = False) -> None:
        """Queue events for the journal; `durable` waits until they are on disk."""
        if self._held:
            events = [*self._held, *events]
            self._held = []
        if events:
            self._ticket = self._writer.put(self, events)
        if durable:
            self._writer.wait(self, self._ticket)

    def flush(self) -> None:
        """Wait until everything recorded so far is in the journal."""
        self._append([], durable=True)

    def close(self) -> None:
        try:
            self._append([], durable=True)
        finally:
            self._writer.forget(self)

    def _now(self) -> str:
        return self.clock.iso_now()

    def run_started(
        self,
        record: RunRecord,
        plan: Plan,
        dsn_shown: str,
        variables: dict[str, Any],
        durable: bool = True,
    ) -> str:
        """Record the run's start; not `durable`: the caller flushes it before
        the run does anything (Engine.run connects meanwhile)."""
        self.run_id = record.id
        at = self._now()
        pid = os.getpid()
        row = {
            "id": record.id,
            "playbook": plan.playbook.name,
            "playbook_path": str(plan.playbook.path),
            "playbook_sha256": plan.playbook.sha256,
            "operator": record.operator,
            "host": socket.gethostname(),
            "pid": pid,
            "pid_started": process_started(pid),
            "mode": record.mode,
            "target": plan.target.name,
            "target_dsn": self.redactor.text(dsn_shown),
            "vars": self.redactor.value(variables),
            "started_at": at,
            "status": "running",
            "parent_run": record.parent_run,
            "extra": self.redactor.value(record.extra or {}),
            "selection": record.selection or {},
            "forced": record.forced,
        }
        if record.continues:
            row["continues"] = record.continues
        if record.consent:
            row["consent"] = record.consent
        self._append(
            [(at, record.id, "run.start", {"table": "runs", "op": "insert", "row": row})],
            durable=durable,
        )
        return at

    def _identity(self, ps: PlannedStep, undoes: int | None) -> dict[str, Any]:
        """The columns that say which step a row is about."""
        row = {
            "run_id": self.run_id,
            "seq": self.seq,
            "idx": ps.index,
            "number": ps.number,
            "key": ps.step.key,
            "name": ps.name,
            "kind": ps.kind,
            "phase": "rollback" if undoes is not None else "main",
            "undoes": undoes,
        }
        if undoes is not None and self.undoing_iteration is not None:
            row["undoes_iteration"] = self.undoing_iteration
        return row

    def step_row(self, ps: PlannedStep, outcome: Outcome) -> dict[str, Any]:
        return {**self._identity(ps, outcome.undoes), **self._ending(outcome)}

    def _ending(self, outcome: Outcome) -> dict[str, Any]:
        """The columns a step's end sets (its identity was written when it started)."""
        row: dict[str, Any] = {
            "status": STATUS_TEXT[outcome.status],
            "reason": outcome.reason,
            "duration_ms": round(outcome.duration_ms, 3),
            "severity": outcome.severity,
            "error": outcome.error or None,
            "sqlstate": outcome.sqlstate,
            "rendered": outcome.rendered or None,
            "params": outcome.params,
            "rowcount": outcome.rowcount,
            "result": _sampled(outcome.result, self.row_sample),
            "notices": outcome.notices,
            "gates": [g.serialize() for g in outcome.gates],
            "attempts": outcome.attempts,
            "history": outcome.history or None,
            "note": outcome.note or None,
        }
        if outcome.statements is not None:  # only autocommit steps of several statements
            row["statements"] = statements_json(outcome.statements)
        r = self.redactor
        if r:  # outcomes come redacted; this is the journal's own guard
            for key in ("reason", "error", "rendered", "note"):
                if row[key]:
                    row[key] = r.text(row[key])
            for key in ("params", "result", "notices", "gates", "history"):
                row[key] = r.value(row[key])
        return row

    def step_started(
        self,
        ps: PlannedStep,
        undoes: int | None = None,
        extra: dict[str, Any] | None = None,
        durable: bool = True,
    ) -> int:
        """Record that a step begins; returns its sequence number in the run."""
        self.seq += 1
        at = self._now()
        row = self._identity(ps, undoes)
        row["status"] = _RUNNING
        row["started_at"] = at
        if extra:
            row.update(extra)
        self._append(
            [(at, self.run_id, "step.start", {"table": "steps", "op": "insert", "row": row})],
            durable=durable,
        )
        return self.seq

    def step_finished(
        self,
        seq: int,
        ps: PlannedStep,
        outcome: Outcome,
        registered: Any = None,
        durable: bool = True,
    ) -> None:
        """Record a step's end; not `durable` (read-only steps) returns at once."""
        at = self._now()
        row = self._ending(outcome)
        row["run_id"] = self.run_id
        row["seq"] = seq
        row["ended_at"] = at
        shown = row["result"]
        if registered is not None and (
            shown is None or shown.get("truncated") or not registered.plain()
        ):
            # Most of the time the shown sample is the whole result, in plain
            # JSON types, which resume reads from `result`; a larger one, or one
            # with values JSON has no type for (bytea, numeric, interval …), is
            # kept again, in full and typed (runbook.typedjson).
            row["registered"] = self.redactor.value(registered.typed(sample=REGISTERED_ROWS))
        event = (at, self.run_id, "step.end", {"table": "steps", "op": "update", "row": row})
        if durable:
            self._append([event], durable=True)
        else:
            self._held.append(event)

    def steps_updated(
        self, changes: list[tuple[int, dict[str, Any]]], kind: str, run_id: str | None = None
    ) -> None:
        """Step rows changed after their end (a transaction committed or rolled back,
        a step undone), in this run or, for `runbook rollback`, in the run undone."""
        at = self._now()
        run = run_id or self.run_id
        events: list[Event] = [
            (
                at,
                run,
                kind,
                {"table": "steps", "op": "update", "row": {"run_id": run, "seq": seq, **row}},
            )
            for seq, row in changes
        ]
        self._append(events, durable=True)

    def run_updated(self, run_id: str, row: dict[str, Any], kind: str) -> None:
        """Another run's record changes (it was rolled back, resumed)."""
        at = self._now()
        self._append(
            [(at, run_id, kind, {"table": "runs", "op": "update", "row": {"id": run_id, **row}})],
            durable=True,
        )

    def step_skipped(
        self, ps: PlannedStep, outcome: Outcome, extra: dict[str, Any] | None = None
    ) -> None:
        """A step that did not run (skipped, not run): one record."""
        self.seq += 1
        at = self._now()
        row = self.step_row(ps, outcome)
        row["started_at"] = at
        row["ended_at"] = at
        if extra:
            row.update(extra)
        self._append(
            [(at, self.run_id, "step.skip", {"table": "steps", "op": "insert", "row": row})]
        )

    def run_finished(self, outcome: RunOutcome) -> None:
        if outcome.status is RunStatus.INTERRUPTED:
            # Ctrl-C: its record is written if the journal answers; a journal
            # that stopped answering must not hold the operator's Ctrl-C.
            self._writer.interrupted()
        at = self._now()
        row = {
            "id": self.run_id,
            "ended_at": at,
            "status": outcome.status.value,
            "exit_code": outcome.exit_code,
            "severity": outcome.severity,
            "reason": self.redactor.text(outcome.reason),
            "counts": outcome.counts(),
        }
        # With a journal key, a signed checkpoint of everything so far ends the
        # run, in the same transaction (runbook.journal.checkpoint).
        self._append(
            [
                (at, self.run_id, "run.end", {"table": "runs", "op": "update", "row": row}),
                checkpoint_request(at),
            ],
            durable=True,
        )
