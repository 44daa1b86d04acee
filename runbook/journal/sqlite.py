"""The journal: an append-only, hash-chained record of runs and steps (SQLite).

Every change is an event appended to `events`, each carrying the hash of the one
before it, and applied in the same transaction to the tables that queries read
(`runs`, `incidents`, …). Steps, written twice each and read rarely, live only
in the events: a run's steps are the fold of its `steps` events. A run and each step are recorded before they execute and
again when they end, so a crash leaves the run visibly in the step it was in;
`reconcile()` marks runs whose process is gone as interrupted. `verify()`
(runbook.journal.verify) recomputes the chain and replays the events against the
tables, so editing either is detected; checkpoints (runbook.journal.checkpoint), signed
with a key kept outside the journal, catch a cut-off tail or a recomputed chain.
How events are hashed: runbook.journal.hashing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook.errors import JournalError
from runbook.journal import hashing
from runbook.journal.events import (
    CHECKPOINTS,
    GENESIS,
    TABLES,
    Conflict,
    Prepared,
    canonical,
    checkpoint_in,
    decode,
    flat,
    fold_steps,
    in_parts,
    planned_note_in,
    prepare,
    unique_run,
)
from runbook.journal.records import (
    UNSENT,
    AuthorizationRecord,
    DeliveryRecord,
    EventRecord,
    IncidentRecord,
    RunRecord,
    StepRecord,
    first_of,
    records_of,
)
from runbook.journal.sqlite_drill import ApprovalTables, DrillTables, FleetRuns
from runbook.journal.sqlite_schedule import SchedulerTables
from runbook.journal.sqlite_schema import SCHEMA_VERSION as SCHEMA_VERSION
from runbook.journal.sqlite_schema import set_up
from runbook.journal.store import StoreConfig
from runbook.journal.writer import Writer, WriterSlot

if TYPE_CHECKING:
    from runbook.journal.checkpoint import Signer


# 7 values a row: under SQLite's oldest limit of 999 bound values a statement.
_ROWS_A_STATEMENT = 64


class Journal(SchedulerTables, DrillTables, ApprovalTables, FleetRuns):
    """The SQLite backend: one file, one writer at a time (WAL: readers never wait).
    The scheduler's tables: runbook.journal.sqlite_schedule."""

    def __init__(
        self, path: Path, key_file: Path | None = None, config: StoreConfig | None = None
    ) -> None:
        self.path = path
        self.config = config or StoreConfig("sqlite", path=path, key_file=key_file)
        self._writers = WriterSlot(self.config)
        # The private key signing checkpoints, loaded now so that a bad key
        # stops a run before it starts, not at its end.
        self.key_file = key_file
        self.signer: Signer | None = None
        if key_file is not None:
            from runbook.journal.checkpoint import load_signer

            self.signer = load_signer(key_file)
        self._v2_from: int | None = None  # the first seq hashed with version 2
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(
                path, isolation_level=None, timeout=30.0, check_same_thread=False
            )
            self.db.row_factory = sqlite3.Row
            # One connection, shared with the delivery thread of the notifier:
            # every use of it holds this lock, or two threads' statements would
            # interleave inside one transaction ("cannot start a transaction
            # within a transaction") and an incident would be lost.
            self.lock = threading.RLock()
            self.db.execute("PRAGMA busy_timeout=30000")
            set_up(self.db, path)
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"cannot open the journal {path}: {exc}") from None

    def close(self) -> None:
        try:
            self._writers.close()  # what the runs queued is written first
        finally:
            self.db.close()

    def writer(self) -> Writer:
        """The group-commit writer the recorders of runs on this store share."""
        return self._writers.get()

    # -- writing --------------------------------------------------------------

    def append(self, events: Iterable[tuple[str, str | None, str, dict[str, Any]]]) -> list[int]:
        """Append events atomically: (at, run_id, kind, change) each.

        A change is {"table": t, "op": "insert"|"update", "row": {...}}; it is
        applied to its table (unless the table is folded) and recorded,
        hash-chained, in `events`. Returns the rowids of inserted rows.
        """
        return self.append_prepared(prepare(events))

    def append_prepared(self, events: list[Prepared]) -> list[int]:
        with self.lock:
            return self._append_locked(events)

    def _append_locked(self, events: list[Prepared]) -> list[int]:
        rowids: list[int] = []
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                seq, prev = self._head()
                first = seq + 1
                # What this writes is hashed with version 2; meta says from where.
                v2_from = self._v2_from or self._hash_version_from(first)
                chained: list[tuple[int, str, str | None, str, str, str, str]] = []

                def add(at: str, run_id: str | None, kind: str, payload: str) -> None:
                    nonlocal seq, prev
                    seq += 1
                    digest = hashing.chain(prev, hashing.record_digest(at, run_id, kind, payload))
                    chained.append((seq, at, run_id, kind, payload, prev, digest))
                    prev = digest

                for at, run_id, kind, change, payload in events:
                    if change["table"] == CHECKPOINTS:
                        if self.signer is not None and seq > 0:
                            add(at, None, kind, self._checkpoint_payload(seq, prev, at))
                        continue
                    if payload is None:
                        row = change["row"]
                        rowid = self._apply(
                            change["table"], change["op"], row, change.get("expect")
                        )
                        if rowid is not None:
                            rowids.append(rowid)
                            if (
                                change["op"] == "insert"
                                and "id" not in row
                                and change["table"] in ("incidents", "deliveries")
                            ):
                                row["id"] = rowid
                        # JSON columns stay JSON text inside the payload: what the
                        # table holds is what the event says, byte for byte.
                        recorded = {k: v for k, v in change.items() if k != "expect"}
                        payload = canonical(recorded)
                    add(at, run_id, kind, payload)
                if self._checkpoint_due(first, seq, chained):
                    at = chained[-1][1]
                    add(at, None, "checkpoint", self._checkpoint_payload(seq, prev, at))
                self._insert_events(chained)
                self.db.execute("COMMIT")
                self._v2_from = v2_from  # recorded in meta now, if it was not
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        except Conflict:
            raise
        except sqlite3.Error as exc:
            raise JournalError(f"cannot write the journal {self.path}: {exc}") from None
        return rowids

    def _insert_events(
        self, chained: list[tuple[int, str, str | None, str, str, str, str]]
    ) -> None:
        """Many rows a statement: sqlite3 lets go of the GIL for each statement
        it steps, and under a fleet's hundred threads the writer waits its turn
        to take it back each time (executemany steps once a row)."""
        for part in in_parts(chained, _ROWS_A_STATEMENT):
            self.db.execute(
                "INSERT INTO events (seq, at, run_id, kind, payload, prev_hash, hash) VALUES "
                + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(part)),
                flat(part),
            )

    # -- hashing and checkpoints (inside the append's write transaction) -------

    def _head(self) -> tuple[int, str]:
        """The last seq handed out and the hash to chain on. The seq comes from
        AUTOINCREMENT's own counter, so events cut from the tail leave a gap."""
        seq, last = self.db.execute(
            "SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'events'),"
            " (SELECT hash FROM events ORDER BY seq DESC LIMIT 1)"
        ).fetchone()
        return int(seq or 0), last or GENESIS

    def _hash_version_from(self, seq: int) -> int:
        """The first seq hashed with version 2, recorded in meta by the first
        writer that uses it; journals written earlier keep version 1 before it."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'hash_version'").fetchone()
        if row is None:
            self.db.execute(
                "INSERT INTO meta (key, value) VALUES ('hash_version', ?)",
                (canonical({"version": hashing.HASH_VERSION, "from_seq": seq}),),
            )
            return seq
        return int(json.loads(row[0])["from_seq"])

    def _checkpoint_due(self, first: int, last: int, chained: list[tuple[Any, ...]]) -> bool:
        """Every EVERY events, when a writer holds the key."""
        if self.signer is None or not chained or chained[-1][3] == "checkpoint":
            return False
        from runbook.journal.checkpoint import EVERY  # imports cryptography: only with a key

        return (first - 1) // EVERY != last // EVERY

    def _checkpoint_payload(self, count: int, head: str, at: str) -> str:
        assert self.signer is not None
        checkpoint = self.signer.sign(count, head, at)
        return canonical({"table": CHECKPOINTS, "op": "insert", "row": checkpoint.serialize()})

    def _apply(
        self, table: str, op: str, row: dict[str, Any], expect: dict[str, Any] | None = None
    ) -> int | None:
        if op == "insert":
            columns = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            try:
                cursor = self.db.execute(
                    f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(row.values())
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"{table}: {exc}") from None
            return cursor.lastrowid
        keys = TABLES[table]
        sets = ", ".join(f"{k} = ?" for k in row if k not in keys)
        conditions = [*keys, *(expect or {})]
        where = " AND ".join(f"{k} IS ?" for k in conditions)
        values = (
            [v for k, v in row.items() if k not in keys]
            + [row[k] for k in keys]
            + list((expect or {}).values())
        )
        cursor = self.db.execute(f"UPDATE {table} SET {sets} WHERE {where}", values)
        if expect and cursor.rowcount == 0:
            # Someone changed it first (two ticks at once): nothing of this append happens.
            raise Conflict(f"{table} {[row[k] for k in keys]} changed meanwhile")
        return None

    # -- reading --------------------------------------------------------------

    @property
    def where(self) -> str:
        return str(self.path)

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """Rows by column name, JSON columns parsed."""
        try:
            with self.lock:
                rows = self.db.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise JournalError(f"cannot read the journal {self.path}: {exc}") from None
        return [decode(dict(r)) for r in rows]

    def _one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def run(self, run_id: str) -> RunRecord | None:
        rows = self.query(
            # A unique prefix names a run too (compared as text: no LIKE wildcards).
            "SELECT * FROM runs WHERE substr(id, 1, length(?)) = ? ORDER BY started_at",
            (run_id, run_id),
        )
        return unique_run(rows, self.steps)

    def runs(
        self,
        *,
        playbook: str | None = None,
        target: str | None = None,
        status: str | None = None,
        since: str | None = None,
        limit: int = 50,
    ) -> list[RunRecord]:
        clauses, params = [], []
        for column, value in (("playbook", playbook), ("target", target), ("status", status)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("started_at >= ?")
            params.append(since)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return records_of(
            RunRecord,
            self.query(
                f"SELECT * FROM runs {where} ORDER BY started_at DESC LIMIT ?", [*params, limit]
            ),
        )

    def running_on(self, host: str) -> list[RunRecord]:
        return records_of(
            RunRecord,
            self.query("SELECT * FROM runs WHERE status = 'running' AND host = ?", (host,)),
        )

    def continuation(self, run_id: str) -> RunRecord | None:
        return first_of(
            RunRecord,
            self.query(
                # Resumes recorded before `continues` existed name their run as parent.
                "SELECT * FROM runs WHERE continues = ?"
                " OR (continues IS NULL AND mode = 'resume' AND parent_run = ?)"
                " ORDER BY continues IS NULL, started_at LIMIT 1",
                (run_id, run_id),
            ),
        )

    def steps(self, run_id: str) -> list[StepRecord]:
        """A run's steps: the fold of its `steps` events, in order."""
        try:
            with self.lock:
                rows = self.db.execute(
                    "SELECT payload FROM events WHERE run_id = ? ORDER BY seq", (run_id,)
                ).fetchall()
        except sqlite3.Error as exc:
            raise JournalError(f"cannot read the journal {self.path}: {exc}") from None
        return fold_steps(run_id, (payload for (payload,) in rows))

    def incident(self, incident_id: int) -> IncidentRecord | None:
        rows = self.query("SELECT * FROM incidents WHERE id = ?", (incident_id,))
        return first_of(IncidentRecord, rows)

    def open_incident(self, key: str) -> IncidentRecord | None:
        rows = self.query("SELECT * FROM incidents WHERE key = ? AND status != 'resolved'", (key,))
        return first_of(IncidentRecord, rows)

    def last_resolved(self, key: str) -> IncidentRecord | None:
        rows = self.query(
            "SELECT * FROM incidents WHERE key = ? AND status = 'resolved' ORDER BY id DESC LIMIT 1",
            (key,),
        )
        return first_of(IncidentRecord, rows)

    def incidents(
        self,
        *,
        only_open: bool,
        keys: Collection[str] | None = None,
        playbook: str | None = None,
    ) -> list[IncidentRecord]:
        conditions = ["status != 'resolved'"] if only_open else []
        params: list[str] = []
        if playbook is not None:
            conditions.append("playbook = ?")
            params.append(playbook)
        if keys is not None:
            # A run asks for its own few gates' keys: the open ones are indexed
            # by key (incidents_open_key), so a fleet's targets each read a row
            # or two, not every open incident of the journal.
            conditions.append("key IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(sorted(keys)))
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        return records_of(
            IncidentRecord,
            self.query(f"SELECT * FROM incidents {where} ORDER BY id DESC", params),
        )

    def incidents_due(self, now: str) -> list[IncidentRecord]:
        rows = self.query(
            "SELECT * FROM incidents WHERE status = 'open' AND next_at IS NOT NULL"
            " AND next_at <= ? ORDER BY id",
            (now,),
        )
        return records_of(IncidentRecord, rows)

    def delivery(self, delivery_id: int) -> DeliveryRecord | None:
        rows = self.query("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
        return first_of(DeliveryRecord, rows)

    def deliveries_of(self, incident_id: int) -> list[DeliveryRecord]:
        rows = self.query(
            "SELECT * FROM deliveries WHERE incident_id = ? ORDER BY id", (incident_id,)
        )
        return records_of(DeliveryRecord, rows)

    def unsent_deliveries(self) -> list[DeliveryRecord]:
        rows = self.query(
            "SELECT * FROM deliveries WHERE status IN (?, ?) ORDER BY id",
            [status.value for status in UNSENT],
        )
        return records_of(DeliveryRecord, rows)

    def loose_deliveries(self) -> list[DeliveryRecord]:
        rows = self.query(
            "SELECT * FROM deliveries WHERE incident_id IS NULL AND status != 'delivered'"
            " ORDER BY id"
        )
        return records_of(DeliveryRecord, rows)

    def planned_note(self, run_id: str | None, delivery_id: int) -> dict[str, Any] | None:
        events = self.query(
            "SELECT payload FROM events WHERE run_id IS ? AND kind = 'delivery.planned'"
            " AND instr(payload, ?) > 0 ORDER BY seq DESC",
            (run_id, f'"id":{delivery_id}'),
        )
        return planned_note_in(events, delivery_id)

    def authorizations(
        self, playbook: str | None = None, target: str | None = None
    ) -> list[AuthorizationRecord]:
        rows = self.query(
            "SELECT * FROM authorizations WHERE (? IS NULL OR playbook = ?)"
            " AND (? IS NULL OR target = ?) ORDER BY granted_at DESC, id",
            (playbook, playbook, target, target),
        )
        return records_of(AuthorizationRecord, rows)

    def head(self) -> tuple[int, str]:
        row = self._one("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
        return (int(row["seq"]), str(row["hash"])) if row else (0, GENESIS)

    def latest_checkpoint(self) -> tuple[int, Any] | None:
        row = self._one(
            "SELECT seq, payload FROM events WHERE run_id IS NULL AND kind = 'checkpoint'"
            " ORDER BY seq DESC LIMIT 1"
        )
        return checkpoint_in(row, "seq")

    def events(self) -> list[EventRecord]:
        return [
            EventRecord.from_row(row) for row in self.query("SELECT * FROM events ORDER BY seq")
        ]

    def verify(self) -> list[str]:
        """Problems found: a broken chain, or tables that disagree with the events."""
        from runbook.journal.verify import verify_connection

        with self.lock:
            return verify_connection(self.db).problems


CopiedEvent = tuple[int, str, "str | None", str, str, str]  # seq, at, run_id, kind, payload, hash


def read_events(path: Path, size: int = 500) -> Iterator[list[CopiedEvent]]:
    """A journal file's events in order, in batches, read without creating,
    migrating or writing it (`runbook journal copy`)."""
    from runbook.journal.verify import connect_reading

    try:
        db = connect_reading(path)
        try:
            cursor = db.execute(
                "SELECT seq, at, run_id, kind, payload, hash FROM events ORDER BY seq"
            )
            while batch := cursor.fetchmany(size):
                yield batch
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise JournalError(f"cannot read the journal {path}: {exc}") from None
