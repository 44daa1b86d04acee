"""How each step and each run ended: one status, a reason, a duration.

Severity (how bad a finding is) and status (did the step run, and how) are
separate things. Exceptions become statuses in exactly one place, the engine.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from runbook.errors import ExitCode


class Status(enum.Enum):
    OK = "ok"
    FAILED = "failed"
    GATE_FAILED = "gate_failed"
    SKIPPED = "skipped"
    NOT_RUN = "not_run"
    ROLLED_BACK = "rolled_back"
    # A step that cannot be transactional (autocommit SQL, a command, a writing
    # request) caught mid-flight by a crash or an interruption: whether it took
    # effect cannot be known, so resume asks instead of guessing.
    UNKNOWN = "unknown"
    DECLINED = "declined"  # a person answered no to a confirm step
    AWAITING_APPROVAL = "awaiting_approval"  # not run: the run parked here for an approval
    RUNNING = "running"  # only in the journal, between a step's two records

    # Members are singletons compared by identity: hash them by identity too,
    # in C, rather than by Enum's own `hash(self._name_)` in Python (a status
    # is looked up in a dict several times a step).
    __hash__ = object.__hash__


# `status.value` without the enum's descriptor, for what runs once per step.
STATUS_TEXT = {status: status.value for status in Status}


class RunStatus(enum.Enum):
    RUNNING = "running"
    OK = "ok"
    GATE_FAILED = "gate_failed"  # a gate failed (halted, or continued past)
    FAILED = "failed"  # a step errored
    INTERRUPTED = "interrupted"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    DECLINED = "declined"  # a person answered no: the run stopped there
    AWAITING_APPROVAL = "awaiting_approval"  # parked until approved (runbook.approval)
    UNREACHABLE = "unreachable"  # the target refused the connection: nothing ran there
    SKIPPED = "skipped"  # run_on: the server is not of the kind the playbook runs on
    NOT_RUN = "not_run"  # a fleet's failure budget tripped, or Ctrl-C, before it started


EXIT_CODES = {
    RunStatus.OK: ExitCode.OK,
    RunStatus.GATE_FAILED: ExitCode.GATE_FAILED,
    RunStatus.FAILED: ExitCode.STEP_ERROR,
    RunStatus.INTERRUPTED: ExitCode.INTERRUPTED,
    RunStatus.ROLLBACK_FAILED: ExitCode.STEP_ERROR,
    RunStatus.DECLINED: ExitCode.REFUSED,
    RunStatus.AWAITING_APPROVAL: ExitCode.WAITING,
    RunStatus.UNREACHABLE: ExitCode.STEP_ERROR,
    RunStatus.SKIPPED: ExitCode.OK,
    # Not run because others failed (their codes say how) or Ctrl-C (130): not
    # a pass, so never 0 on its own.
    RunStatus.NOT_RUN: ExitCode.GATE_FAILED,
}


@dataclass
class GateOutcome:
    name: str
    passed: bool
    severity: str
    message: str = ""

    def serialize(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "severity": self.severity,
            "message": self.message,
        }


@dataclass
class Outcome:
    """One step's ending, already redacted: safe to show and to record."""

    index: int
    number: str
    name: str
    kind: str
    status: Status
    reason: str = ""
    duration_ms: float = 0.0
    severity: str | None = None
    error: str | None = None
    sqlstate: str | None = None
    rendered: str | None = None
    params: list[Any] | None = None
    rowcount: int | None = None
    result: dict[str, Any] | None = None
    notices: list[str] = field(default_factory=list)
    gates: list[GateOutcome] = field(default_factory=list)
    attempts: int = 0
    undoes: int | None = None  # for rollback steps: the index of the step undone
    key: str = ""  # step id or name: the stable identity
    history: list[dict[str, Any]] = field(default_factory=list)  # one entry per failed attempt
    note: str = ""  # one line for people: "3 rows", "exit status 0", "confirmed by --yes"
    # The step's max_rows: how many rows of `result` the report shows (None: its own default).
    shown_rows: int | None = None
    # An autocommit step with several statements: (how many ended, how many there are).
    statements: tuple[int, int] | None = None
    # One iteration of a looped step: its number (0-based) and item (redacted),
    # and the item as a person reads it ("item='orders'").
    iteration: int | None = None
    item: Any = None
    item_label: str = ""
    # A looped step's summary: its iterations' outcomes, in order.
    iterations: list[Outcome] = field(default_factory=list)

    def serialize(self) -> dict[str, Any]:
        out = self._serialize()
        if self.iteration is not None:
            out["iteration"], out["item"] = self.iteration, self.item
        if self.iterations:
            out["iterations"] = [o.serialize() for o in self.iterations]
        return out

    def _serialize(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "number": self.number,
            "key": self.key,
            "name": self.name,
            "kind": self.kind,
            "status": self.status.value,
            "reason": self.reason,
            "duration_ms": round(self.duration_ms, 3),
            "severity": self.severity,
            "error": self.error,
            "sqlstate": self.sqlstate,
            "rendered": self.rendered,
            "params": self.params,
            "rowcount": self.rowcount,
            "result": self.result,
            "notices": self.notices,
            "gates": [g.serialize() for g in self.gates],
            "attempts": self.attempts,
            "history": self.history,
            "undoes": self.undoes,
            "note": self.note,
            "statements": statements_json(self.statements),
        }


def statements_json(statements: tuple[int, int] | None) -> dict[str, int] | None:
    """How the journal and --format json spell an autocommit step's progress."""
    return None if statements is None else {"done": statements[0], "total": statements[1]}


@dataclass
class RunOutcome:
    run_id: str
    playbook: str
    target: str
    mode: str
    status: RunStatus
    steps: list[Outcome] = field(default_factory=list)
    severity: str | None = None
    started_at: str = ""
    ended_at: str = ""
    duration_ms: float = 0.0
    reason: str = ""
    journal: str = ""
    nagios: int = 3  # OK 0, WARNING 1, CRITICAL 2, UNKNOWN 3 (by the scale's mapping)
    notifications: list[dict[str, Any]] = field(default_factory=list)  # incidents, deliveries

    @property
    def exit_code(self) -> int:
        if self.status is RunStatus.ROLLED_BACK:
            if self.mode == "rollback":
                return int(ExitCode.OK)  # `runbook rollback` did what was asked
            failed = any(
                s.status in (Status.FAILED, Status.UNKNOWN) and s.undoes is None for s in self.steps
            )
            return int(ExitCode.STEP_ERROR if failed else ExitCode.GATE_FAILED)
        return int(EXIT_CODES.get(self.status, ExitCode.STEP_ERROR))

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status if s is not Status.RUNNING}
        for step in self.steps:
            out[step.status.value] += 1
        return out

    def serialize(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "playbook": self.playbook,
            "target": self.target,
            "mode": self.mode,
            "status": self.status.value,
            "exit_code": self.exit_code,
            "severity": self.severity,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_ms": round(self.duration_ms, 3),
            "reason": self.reason,
            "journal": self.journal,
            "counts": self.counts(),
            "nagios": self.nagios,
            "notifications": self.notifications,
            "steps": [s.serialize() for s in self.steps],
        }
