"""The PostgreSQL journal's part of the scheduler: the fire ledger, pauses, heartbeats.

`fires` and `pauses` are written as events like every mirrored table
(PostgresStore.append, journal-wide chain); this reads them. Heartbeats are the
exception: liveness, not history, so `beat` upserts its row in place, outside
the chains.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from runbook.errors import JournalError
from runbook.journal.records import (
    FireRecord,
    HeartbeatRecord,
    PauseRecord,
    first_of,
    records_of,
)

# The latest slot of each (playbook, schedule, target): rows of one never
# overlap, so it also reaches furthest (slot_last). DISTINCT ON keeps the first
# row of each triple in this order, read along the fires_slot index.
_HEADS = (
    "SELECT DISTINCT ON (playbook_path, schedule, target) * FROM fires"
    " ORDER BY playbook_path, schedule, target, slot DESC, claimed_at DESC, id DESC"
)
_HEARTBEAT = [f.name for f in fields(HeartbeatRecord)]
_BEAT = sql.SQL("INSERT INTO heartbeats ({}) VALUES ({}) ON CONFLICT (id) DO UPDATE SET {}").format(
    sql.SQL(", ").join(map(sql.Identifier, _HEARTBEAT)),
    sql.SQL(", ").join(sql.Placeholder(k) for k in _HEARTBEAT),
    sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(k)) for k in _HEARTBEAT if k != "id"
    ),
)


class SchedulerTables:
    """The scheduler's tables, mixed into runbook.journal.postgres.PostgresStore."""

    if TYPE_CHECKING:
        conn: psycopg.Connection[Any]
        lock: threading.RLock

        @property
        def where(self) -> str: ...

        def query(
            self, text: str, params: Sequence[Any] | Mapping[str, Any] = ()
        ) -> list[dict[str, Any]]: ...

    def fire(self, fire_id: str) -> FireRecord | None:
        return first_of(FireRecord, self.query("SELECT * FROM fires WHERE id = %s", (fire_id,)))

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
            "SELECT * FROM fires WHERE (%(p)s::text IS NULL OR playbook_path = %(p)s)"
            " AND (%(t)s::text IS NULL OR target = %(t)s)"
            " AND (%(s)s::text IS NULL OR status = %(s)s)"
            " AND (%(n)s::text IS NULL OR playbook = %(n)s OR playbook_path = %(n)s)"
            " AND (%(since)s::text IS NULL OR coalesce(slot_last, slot) >= %(since)s)"
            " AND (NOT %(unsettled)s OR (run_status IS NULL AND ended_at IS NULL))"
            # LIMIT NULL: none.
            " ORDER BY slot DESC, claimed_at DESC LIMIT %(limit)s",
            {
                "p": playbook_path,
                "t": target,
                "s": status,
                "n": playbook,
                "since": since,
                "unsettled": unsettled,
                "limit": limit,
            },
        )
        return records_of(FireRecord, rows)

    def fire_head(self, playbook_path: str, schedule: str, target: str) -> FireRecord | None:
        # Along the fires_slot index; one triple's rows never share a slot.
        rows = self.query(
            "SELECT * FROM fires WHERE playbook_path = %s AND schedule = %s AND target = %s"
            " ORDER BY slot DESC LIMIT 1",
            (playbook_path, schedule, target),
        )
        return first_of(FireRecord, rows)

    def fire_heads(self) -> list[FireRecord]:
        return records_of(FireRecord, self.query(_HEADS))

    def pauses(self, playbook_path: str | None = None) -> list[PauseRecord]:
        rows = self.query(
            "SELECT * FROM pauses WHERE (%(p)s::text IS NULL OR playbook_path = %(p)s)"
            " ORDER BY at DESC, id DESC",
            {"p": playbook_path},
        )
        return records_of(PauseRecord, rows)

    def beat(self, heartbeat: HeartbeatRecord) -> None:
        try:
            with self.lock:  # one connection, shared with the notifier's thread
                self.conn.execute(_BEAT, heartbeat.as_dict())
        except psycopg.Error as exc:
            raise JournalError(f"cannot write the journal {self.where}: {exc}") from None

    def heartbeats(self) -> list[HeartbeatRecord]:
        rows = self.query("SELECT * FROM heartbeats ORDER BY last_tick DESC, id")
        return records_of(HeartbeatRecord, rows)
