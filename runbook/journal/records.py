"""The journal's records: runs, steps, events, incidents and deliveries, typed.

A backend reads rows (columns by name, JSON columns parsed) and turns each
into a record with its record type's `from_row`: the one place columns become
fields, shared by both backends. A status the record type does not know stops
the read with a JournalError naming the row, rather than travelling on as a
string nothing matches. Timestamps stay the ISO text the journal stores (the
backends compare them as text, and the CLI shows them as stored).

`as_dict` gives a record back as `runbook history`, `show` and `incidents`
print it with --format json (statuses as their text).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from runbook.errors import JournalError
from runbook.outcome import RunStatus, Status


class RunMode(enum.Enum):
    RUN = "run"
    CHECK = "check"
    REHEARSE = "rehearse"
    RESUME = "resume"
    ROLLBACK = "rollback"
    ROLLBACK_CHECK = "rollback-check"  # `runbook rollback --check`: nothing undone
    SCHEDULED = "scheduled"  # fired by `runbook scheduler` (runbook.schedule)
    DRILL = "drill"  # a drill's inject, procedure or recovery, on a marked copy (runbook.drill)


class IncidentStatus(enum.Enum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class DeliveryStatus(enum.Enum):
    PENDING = "pending"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    FAILED = "failed"


# Deliveries still to send (by whoever holds them, or a later tick).
UNSENT = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)

E = TypeVar("E", bound=enum.Enum)


def _enum(kind: type[E], row: Mapping[str, Any], column: str, what: str) -> E:
    """The enum member a column holds; a value this runbook does not know is
    an error naming the row (a newer runbook's journal, or an edited one)."""
    value = row.get(column)
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(str(member.value) for member in kind)
        raise JournalError(
            f"the journal's {what} has {column} {value!r}, which this runbook does not know"
            f" ({known}): a newer runbook wrote it, or the journal was edited"
        ) from None


def _columns(record: type[Any], row: Mapping[str, Any], what: str) -> dict[str, Any]:
    """The row's value of each of the record's fields that a column holds as it is."""
    try:
        return {f.name: row[f.name] for f in fields(record) if f.metadata.get("as_is", True)}
    except KeyError as exc:
        raise JournalError(f"the journal's {what} has no column {exc}") from None


# Field metadata: `from_row` converts the field itself (an enum, a value only some rows have).
_CONVERTED = {"as_is": False}


@dataclass(frozen=True, slots=True)
class StepRecord:
    """A step of a run: the fold of its `steps` events (runbook.journal.events)."""

    run_id: str
    seq: int
    idx: int | None
    number: str | None
    key: str | None
    name: str | None
    kind: str | None
    phase: str | None  # "main", or "rollback" for an undo step
    undoes: int | None  # an undo step's: the index of the step it undoes
    status: Status = field(metadata=_CONVERTED)
    reason: str | None
    started_at: str | None
    ended_at: str | None
    duration_ms: float | None
    severity: str | None
    error: str | None
    sqlstate: str | None
    rendered: str | None
    params: list[Any] | None
    rowcount: int | None
    result: dict[str, Any] | None
    registered: dict[str, Any] | None  # a larger result kept in full, for resume
    notices: list[str] | None
    gates: list[dict[str, Any]] | None
    attempts: int | None
    history: list[dict[str, Any]] | None
    note: str | None
    xid: str | None  # the transaction a tracked step ran in
    # Recorded by some steps only (and shown only when recorded):
    outside: bool = field(
        metadata=_CONVERTED
    )  # may act outside any transaction: caught, it is unknown
    marker: str | None = field(
        metadata=_CONVERTED
    )  # the marker row whose existence says it committed
    decision: str | None = field(metadata=_CONVERTED)  # an unknown outcome decided: rerun or skip
    decided: str | None = field(metadata=_CONVERTED)  # by whom
    # An autocommit step of several statements: {done, total} (runbook.engine.outside).
    statements: dict[str, int] | None = field(metadata=_CONVERTED)
    # A looped step's (runbook.engine.loops): an iteration's place and item (redacted),
    # the summary's items (and how they differ from the list a resumed run looped
    # over), and an undo step's iteration it undoes.
    iteration: int | None = field(metadata=_CONVERTED)
    item: Any = field(metadata=_CONVERTED)  # recorded with `iteration` (None may be the item)
    loop_items: list[Any] | None = field(metadata=_CONVERTED)
    loop_changed: str | None = field(metadata=_CONVERTED)
    undoes_iteration: int | None = field(metadata=_CONVERTED)
    # Anything else a step recorded (a newer runbook's keys): kept, shown, not read.
    more: dict[str, Any] = field(metadata=_CONVERTED)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StepRecord:
        what = f"step {row.get('seq')!r} of run {row.get('run_id')!r}"
        return cls(
            **_columns(cls, row, what),
            status=_enum(Status, row, "status", what),
            outside=bool(row.get("outside")),
            marker=row.get("marker"),
            decision=row.get("decision"),
            decided=row.get("decided"),
            statements=row.get("statements"),
            iteration=row.get("iteration"),
            item=row.get("item"),
            loop_items=row.get("loop_items"),
            loop_changed=row.get("loop_changed"),
            undoes_iteration=row.get("undoes_iteration"),
            more={k: v for k, v in row.items() if k not in _STEP_FIELDS},
        )

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _STEP_OPTIONAL}
        out["status"] = self.status.value
        if self.outside:
            out["outside"] = True
        if self.iteration is not None:
            out["iteration"] = self.iteration
            out["item"] = self.item
        for name in ("loop_items", "loop_changed", "undoes_iteration"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        # In the order the fold first met them: events' keys are stored sorted.
        for name in ("marker", "decided", "decision", "statements"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        out.update(self.more)
        return out


_STEP_OPTIONAL = {
    "outside",
    "marker",
    "decision",
    "decided",
    "statements",
    "iteration",
    "item",
    "loop_items",
    "loop_changed",
    "undoes_iteration",
    "more",
}
_STEP_FIELDS = frozenset(f.name for f in fields(StepRecord))


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run; with its steps (in order) where `JournalStore.run` read them."""

    id: str
    playbook: str
    playbook_path: str | None
    playbook_sha256: str | None
    operator: str | None
    host: str | None
    pid: int | None
    pid_started: float | None  # the process's start time: a reused pid is another process
    mode: RunMode = field(metadata=_CONVERTED)
    target: str | None
    target_dsn: str | None  # redacted
    vars: dict[str, Any] | None
    started_at: str
    ended_at: str | None
    status: RunStatus = field(metadata=_CONVERTED)
    exit_code: int | None
    severity: str | None
    reason: str | None
    parent_run: str | None
    counts: dict[str, int] | None
    extra: dict[str, Any] | None  # -e values (secrets redacted), for resume
    selection: dict[str, Any] | None  # targets, tags, skip_tags
    forced: str | None  # why a resume ran on a changed playbook
    continues: str | None  # the run this resume or rollback continues
    consent: dict[str, Any] | None  # who let it start (runbook.consent)
    steps: tuple[StepRecord, ...] | None = field(metadata=_CONVERTED)

    @classmethod
    def from_row(
        cls, row: Mapping[str, Any], steps: Iterable[StepRecord] | None = None
    ) -> RunRecord:
        what = f"run {row.get('id')!r}"
        return cls(
            **_columns(cls, row, what),
            mode=_enum(RunMode, row, "mode", what),
            status=_enum(RunStatus, row, "status", what),
            steps=None if steps is None else tuple(steps),
        )

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "steps"}
        out["mode"] = self.mode.value
        out["status"] = self.status.value
        if self.steps is not None:
            out["steps"] = [step.as_dict() for step in self.steps]
        return out


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    id: int
    key: str  # playbook + gate + target: the same failure counts on the open incident
    playbook: str | None
    gate: str | None
    target: str | None
    policy: str | None
    severity: str
    status: IncidentStatus = field(metadata=_CONVERTED)
    title: str | None
    message: str | None
    opened_at: str
    updated_at: str
    acknowledged_at: str | None
    acknowledged_by: str | None
    resolved_at: str | None
    resolved_by: str | None
    resolution: str | None
    occurrences: int
    last_run: str | None
    level: int  # escalation stops done
    next_at: str | None  # when the next stop is due
    repeats: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> IncidentRecord:
        what = f"incident {row.get('id')!r}"
        return cls(**_columns(cls, row, what), status=_enum(IncidentStatus, row, "status", what))

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["status"] = self.status.value
        return out

    def changed(self, update: Mapping[str, Any]) -> IncidentRecord:
        """The incident as the journal holds it once `update` (a row change of
        its columns) is applied: what an alerting step goes on with after writing it."""
        return IncidentRecord.from_row({**self.as_dict(), **update})


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: int
    incident_id: int | None  # None: a notify step's
    run_id: str | None
    channel: str
    event: str
    level: int | None
    status: DeliveryStatus = field(metadata=_CONVERTED)
    attempts: int
    error: str | None  # while unsent: why, and who holds it (runbook.alerts.delivery)
    created_at: str
    updated_at: str
    dedupe: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> DeliveryRecord:
        what = f"delivery {row.get('id')!r}"
        return cls(**_columns(cls, row, what), status=_enum(DeliveryStatus, row, "status", what))


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event as appended: its payload is the canonical JSON text that is hashed."""

    seq: int
    at: str
    run_id: str | None
    kind: str
    payload: str
    prev_hash: str
    hash: str
    # PostgreSQL's: the chain the event extends ('' journal-wide, or a run's id) and its place in it.
    stream: str | None = field(metadata=_CONVERTED)
    pos: int | None = field(metadata=_CONVERTED)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> EventRecord:
        what = f"event {row.get('seq')!r}"
        return cls(**_columns(cls, row, what), stream=row.get("stream"), pos=row.get("pos"))


@dataclass(frozen=True, slots=True)
class AuthorizationRecord:
    """A standing authorization of a playbook on a target (runbook.consent)."""

    id: str
    playbook: str
    playbook_path: str
    digest: str  # sha256 of the playbook with its includes and SQL files
    target: str
    granted_by: str
    granted_at: str
    reason: str | None
    revoked_by: str | None
    revoked_at: str | None
    revoke_reason: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AuthorizationRecord:
        return cls(**_columns(cls, row, f"authorization {row.get('id')!r}"))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class FireStatus(enum.Enum):
    """What became of a slot of a schedule (runbook.schedule.decide)."""

    STARTED = "started"  # claimed, and its run launched (run_id)
    QUEUED = "queued"  # overlap queue_one: starts when the run before it ends
    SKIPPED = "skipped"  # overlap skip (the run before it still going), or a queue already full
    MISSED = "missed"  # not started within its deadline (the scheduler was down, or late)
    BLACKOUT = "blackout"  # in a blackout window
    PAUSED = "paused"  # the schedule was disabled (runbook schedule disable)
    REFUSED = "refused"  # no standing authorization for a protected target
    ERROR = "error"  # the run could not start (the playbook no longer loads, …)


@dataclass(frozen=True, slots=True)
class FireRecord:
    """A row of the fire ledger: one slot of one schedule on one target (or a
    range of slots, `slot` to `slot_last`, `count` of them: a long outage is
    one row). Its id is unique: the scheduler that inserts it owns the slot."""

    id: str
    playbook: str  # the playbook's name
    playbook_path: str  # relative to the project's root: the ledger's key
    schedule: str  # the schedule's key (runbook.model.Schedule.key)
    target: str
    slot: str  # ISO UTC, to the millisecond: the slot's identity
    slot_last: str | None  # a range's last slot
    count: int
    status: FireStatus = field(metadata=_CONVERTED)
    reason: str | None
    late: float | None  # seconds after its slot the run started
    run_id: str | None
    scheduler: str | None  # who claimed it: host:pid
    claimed_at: str
    ended_at: str | None
    run_status: str | None  # the run's status when it ended, as the scheduler saw it

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> FireRecord:
        what = f"fire {row.get('id')!r}"
        return cls(**_columns(cls, row, what), status=_enum(FireStatus, row, "status", what))

    @property
    def last(self) -> str:
        """The slot this row reaches to (its range's last, or its own)."""
        return self.slot_last or self.slot

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["status"] = self.status.value
        return data


@dataclass(frozen=True, slots=True)
class PauseRecord:
    """`runbook schedule disable|enable`: a playbook's schedules paused or
    resumed on one target, or on all of them (target "*")."""

    id: str
    playbook: str
    playbook_path: str
    target: str
    paused: bool = field(metadata=_CONVERTED)
    by: str
    at: str
    reason: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PauseRecord:
        return cls(**_columns(cls, row, f"pause {row.get('id')!r}"), paused=bool(row["paused"]))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class HeartbeatRecord:
    """A scheduler process and when it last ticked (liveness, not history:
    kept outside the hash chain, overwritten at every beat)."""

    id: str  # host:pid:started
    host: str
    pid: int
    started_at: str
    last_tick: str
    stopped_at: str | None
    note: str | None  # what its last tick did, in a few words

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> HeartbeatRecord:
        return cls(**_columns(cls, row, f"scheduler {row.get('id')!r}"))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class DrillRecord:
    """A drill (runbook.drill): a procedure rehearsed on a marked copy of a target."""

    id: str
    playbook: str  # the drill playbook's name (or the procedure's, drilled directly)
    playbook_path: str
    exercise: str  # the procedure rehearsed (its name)
    target: str
    copy_db: str  # the copy's database
    copy_method: str  # template | dump
    operator: str
    os_user: str  # who ran it, as the operating system knows them (sign-off is refused to them)
    host: str
    pid: int | None  # the drill's process: a drill whose process is gone is reconciled
    pid_started: float | None
    participants: list[dict[str, Any]] | None  # [{name, role}]
    started_at: str
    inject_at: str | None  # when the injects ended: the clock of the objectives starts
    ended_at: str | None
    status: str  # running | completed | failed | interrupted
    run_ids: list[dict[str, Any]] | None  # [{role: inject|procedure|recovery, run_id}]
    objective_results: (
        dict[str, Any] | None
    )  # {objectives, steps, answers} (runbook.drill.objectives)
    rpo_s: float | None
    kept: int  # 1: the copy was kept (--keep)
    reason: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> DrillRecord:
        return cls(**_columns(cls, row, f"drill {row.get('id')!r}"))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class DrillNoteRecord:
    """A finding, a corrective action or a sign-off of a drill."""

    id: str
    drill_id: str
    kind: str  # finding | action | signoff
    text: str
    owner: str | None
    due: str | None
    by: str  # the operating system's user who wrote it
    at: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> DrillNoteRecord:
        return cls(**_columns(cls, row, f"drill note {row.get('id')!r}"))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    """A run's request for approval (runbook.approval)."""

    id: str
    run_id: str  # the run that asked (a resume of it looks the request up by it)
    playbook: str
    target: str | None
    step: str | None  # a step's key for a step-level approval; None: the playbook's
    digest: (
        str  # what was approved: the playbook, its files, variables, targets (a step's statement)
    )
    quorum: int
    approvers: list[str] | None  # user names and groups of people; empty: anyone
    forbid_self: int
    requested_by: str
    requested_os_user: str
    requested_at: str
    status: str  # pending | approved | denied | broken (break-glass) | void
    decided_at: str | None
    reason: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ApprovalRecord:
        return cls(**_columns(cls, row, f"approval {row.get('id')!r}"))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class VoteRecord:
    """One person's approve or deny on a request."""

    id: str
    approval_id: str
    by: str  # the operating system's user
    at: str
    decision: str  # approve | deny
    comment: str | None
    principal: str | None  # an SSH signature's verified principal
    signature: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> VoteRecord:
        return cls(**_columns(cls, row, f"vote {row.get('id')!r}"))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


Record = TypeVar(
    "Record",
    RunRecord,
    StepRecord,
    IncidentRecord,
    DeliveryRecord,
    EventRecord,
    AuthorizationRecord,
    FireRecord,
    PauseRecord,
    HeartbeatRecord,
    DrillRecord,
    DrillNoteRecord,
    ApprovalRecord,
    VoteRecord,
)


def records_of(record: type[Record], rows: Iterable[Mapping[str, Any]]) -> list[Record]:
    """Rows read by a backend, as records of one type."""
    return [record.from_row(row) for row in rows]


def first_of(record: type[Record], rows: Iterable[Mapping[str, Any]]) -> Record | None:
    """The first of the rows (a read by key: the only one), as a record; None if none."""
    return next((record.from_row(row) for row in rows), None)
