"""The fire ledger's rows as journal events, and a pair's state read back.

A fire's id is (playbook path, schedule, target, slot): unique in the journal,
so inserting it is the claim (runbook.schedule.decide says why two schedulers
collide on the same first row). Rows are written through the journal's events
like every table, so the ledger is hash-chained and verified with the rest.
Pauses (`runbook schedule disable|enable`) are events too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from runbook.clock import parse_iso
from runbook.journal.records import FireRecord, FireStatus, PauseRecord
from runbook.journal.store import JournalStore
from runbook.schedule.decide import PairState, Row
from runbook.schedule.slots import Slot

Event = tuple[str, str | None, str, dict[str, Any]]
ALL_TARGETS = "*"


@dataclass(frozen=True)
class Pair:
    """One schedule of one playbook on one target, as the ledger keys it."""

    playbook: str  # the name, for people
    path: str  # relative to the project's root: the key
    schedule: str  # Schedule.key
    target: str

    def fire_id(self, slot: Slot) -> str:
        return f"{self.path}|{self.schedule}|{self.target}|{slot.key}"


def insert_events(
    pair: Pair, rows: tuple[Row, ...], scheduler: str, at: str, run_id: str | None
) -> list[Event]:
    """The decision's rows as events; `run_id` goes to the one that starts."""
    out: list[Event] = []
    for row in rows:
        record = {
            "id": pair.fire_id(row.first),
            "playbook": pair.playbook,
            "playbook_path": pair.path,
            "schedule": pair.schedule,
            "target": pair.target,
            "slot": row.first.key,
            "slot_last": row.last.key if row.last is not None else None,
            "count": row.count,
            "status": row.status.value,
            "reason": row.reason,
            "late": round(row.late, 3) if row.late is not None else None,
            "run_id": run_id if row.status is FireStatus.STARTED else None,
            "scheduler": scheduler,
            "claimed_at": at,
            "ended_at": None,
            "run_status": None,
        }
        out.append((at, None, f"fire.{row.status.value}", _change("insert", record)))
    return out


def update_event(
    fire_id: str, at: str, expect: dict[str, Any] | None = None, **values: Any
) -> Event:
    """A change to a fire row (its run ended, it was refused, a queued one starts);
    with `expect`, only if the row still holds those values (else Conflict)."""
    change = _change("update", {"id": fire_id, **values})
    if expect:
        change["expect"] = expect
    kind = f"fire.{values['status']}" if "status" in values else "fire.ended"
    return (at, None, kind, change)


def _change(op: str, row: dict[str, Any]) -> dict[str, Any]:
    return {"table": "fires", "op": op, "row": row}


def pause_event(
    playbook: str, path: str, target: str, paused: bool, by: str, at: str, reason: str
) -> Event:
    row = {
        "id": uuid.uuid4().hex[:12],
        "playbook": playbook,
        "playbook_path": path,
        "target": target,
        "paused": int(paused),
        "by": by,
        "at": at,
        "reason": reason,
    }
    kind = "schedule.disable" if paused else "schedule.enable"
    return (at, None, kind, {"table": "pauses", "op": "insert", "row": row})


def pause_of(pauses: list[PauseRecord], path: str, target: str) -> PauseRecord | None:
    """The pause record in force for a playbook on a target (its own, or for all
    targets), newest first in `pauses`."""
    for record in pauses:
        if record.playbook_path == path and record.target in (target, ALL_TARGETS):
            return record
    return None


def state_of(
    head: FireRecord | None,
    pause: PauseRecord | None,
    running: str | None,
    queued: bool,
) -> PairState:
    return PairState(
        high_water=parse_iso(head.last) if head is not None else None,
        running=running,
        queued=queued,
        paused=pause is not None and pause.paused,
        resumed_at=parse_iso(pause.at) if pause is not None and not pause.paused else None,
    )


def read_state(
    journal: JournalStore, pair: Pair, running: str | None, head: FireRecord | None
) -> PairState:
    """A pair's state as the journal has it now: its ledger head (read by the
    caller, which also needs it), queued slots and pauses."""
    queued = any(
        f.schedule == pair.schedule
        for f in journal.fires(playbook_path=pair.path, target=pair.target, status="queued")
    )
    pause = pause_of(journal.pauses(pair.path), pair.path, pair.target)
    return state_of(head, pause, running, queued)
