"""The SQLite journal's part of the scheduler: the fire ledger, pauses, heartbeats.

`fires` and `pauses` are written as events like every mirrored table
(Journal.append); this reads them. Heartbeats are the exception: liveness, not
history, so `beat` upserts its row in place, outside the chain.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook.errors import JournalError
from runbook.journal.records import (
    FireRecord,
    HeartbeatRecord,
    PauseRecord,
    first_of,
    records_of,
)

# The latest slot of each (playbook, schedule, target): rows of one never
# overlap, so it also reaches furthest (slot_last).
_HEADS = """
SELECT * FROM (
    SELECT *, row_number() OVER (
        PARTITION BY playbook_path, schedule, target
        ORDER BY slot DESC, claimed_at DESC, id DESC
    ) AS nth
    FROM fires
) WHERE nth = 1 ORDER BY playbook_path, schedule, target
"""


class SchedulerTables:
    """The scheduler's tables, mixed into runbook.journal.sqlite.Journal."""

    if TYPE_CHECKING:
        path: Path
        db: sqlite3.Connection
        lock: threading.RLock

        def query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]: ...

    def fire(self, fire_id: str) -> FireRecord | None:
        return first_of(FireRecord, self.query("SELECT * FROM fires WHERE id = ?", (fire_id,)))

    def fires(
        self,
        *,
        playbook_path: str | None = None,
        target: str | None = None,
        status: str | None = None,
        limit: int | None = 100,
        playbook: str | None = None,
        since: str | None = None,
        unsettled: bool = False,
    ) -> list[FireRecord]:
        # Every filter here, before the LIMIT: a filter applied to the latest
        # rows afterwards misses a playbook whose fires are older than others'.
        rows = self.query(
            "SELECT * FROM fires WHERE (?1 IS NULL OR playbook_path = ?1)"
            " AND (?2 IS NULL OR target = ?2) AND (?3 IS NULL OR status = ?3)"
            " AND (?5 IS NULL OR playbook = ?5 OR playbook_path = ?5)"
            " AND (?6 IS NULL OR coalesce(slot_last, slot) >= ?6)"
            " AND (NOT ?7 OR (run_status IS NULL AND ended_at IS NULL))"
            " ORDER BY slot DESC, claimed_at DESC LIMIT ?4",
            # SQLite: a negative LIMIT is none.
            (
                playbook_path,
                target,
                status,
                -1 if limit is None else limit,
                playbook,
                since,
                unsettled,
            ),
        )
        return records_of(FireRecord, rows)

    def fire_head(self, playbook_path: str, schedule: str, target: str) -> FireRecord | None:
        # Along the fires_slot index; one triple's rows never share a slot.
        rows = self.query(
            "SELECT * FROM fires WHERE playbook_path = ? AND schedule = ? AND target = ?"
            " ORDER BY slot DESC LIMIT 1",
            (playbook_path, schedule, target),
        )
        return first_of(FireRecord, rows)

    def fire_heads(self) -> list[FireRecord]:
        return records_of(FireRecord, self.query(_HEADS))

    def pauses(self, playbook_path: str | None = None) -> list[PauseRecord]:
        rows = self.query(
            "SELECT * FROM pauses WHERE (?1 IS NULL OR playbook_path = ?1)"
            " ORDER BY at DESC, id DESC",
            (playbook_path,),
        )
        return records_of(PauseRecord, rows)

    def beat(self, heartbeat: HeartbeatRecord) -> None:
        row = heartbeat.as_dict()
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        updates = ", ".join(f"{k} = excluded.{k}" for k in row if k != "id")
        try:
            with self.lock:  # the connection is shared with the notifier's thread
                self.db.execute(
                    f"INSERT INTO heartbeats ({columns}) VALUES ({marks})"
                    f" ON CONFLICT (id) DO UPDATE SET {updates}",
                    tuple(row.values()),
                )
        except sqlite3.Error as exc:
            raise JournalError(f"cannot write the journal {self.path}: {exc}") from None

    def heartbeats(self) -> list[HeartbeatRecord]:
        rows = self.query("SELECT * FROM heartbeats ORDER BY last_tick DESC, id")
        return records_of(HeartbeatRecord, rows)
