"""The PostgreSQL backend: a journal a team shares, written by many hosts at once.

The tables live in one schema (`runbook` by default), created and upgraded by
the numbered migrations in `sql/journal/` (runbook.journal.migrate). Each
run's events chain among themselves (stream = the run's id); incidents,
deliveries, checkpoints and the seal of every ended run (its chain's length
and head) chain journal-wide (stream ''). An append locks only the chains it
extends, so runs on many hosts never wait on each other; the journal-wide
chain is taken once per run end and by alerting, and extended by the server
(extend_chain, sql/journal/007_extend_chain.sql) in the append's last
statement, so that it is locked only from there to the COMMIT. A store
keeps the heads its appends left (a fleet's writer appends to each of a
hundred runs again and again): an append whose heads are all known goes in
one round trip, its chains locked by writing them, and one whose known head
had moved meanwhile is refused by the events' (stream, pos) key and made
again, every head read and locked. `verify`
(runbook.journal.postgres_verify) recomputes every chain, checks each seal
against its run's chain and replays the events against the tables.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from runbook.errors import JournalError
from runbook.journal import hashing
from runbook.journal import postgres_rows as rows
from runbook.journal.events import (
    CHECKPOINTS,
    GENESIS,
    Conflict,
    Prepared,
    canonical,
    checkpoint_in,
    decode,
    flat,
    in_parts,
    prepare,
)
from runbook.journal.migrate import connect, migrate
from runbook.journal.postgres_drill import ApprovalTables, DrillTables, FleetRuns
from runbook.journal.postgres_landed import Sent, landed
from runbook.journal.postgres_mirror import MirroredRows, Sink, unanswered
from runbook.journal.postgres_read import RunTables
from runbook.journal.postgres_rows import (
    HEADS_KEPT,
    JOURNAL_WIDE,
    known_heads,
    lock_order,
    stale,
)
from runbook.journal.postgres_schedule import SchedulerTables
from runbook.journal.postgres_send import Plan, Sender, Statements
from runbook.journal.records import (
    EventRecord,
    records_of,
)
from runbook.journal.store import StoreConfig
from runbook.journal.writer import Writer, WriterSlot
from runbook.pg.lost import connection_lost

if TYPE_CHECKING:
    from runbook.journal.checkpoint import Signer

RUN_TABLES = ("runs", "steps")  # changes chained in their run's stream
SEALS = "seals"  # the `table` of a seal event: no table to mirror
_ENDED_KIND = "run.sealed"

# Writers a PostgreSQL journal's runs share (runbook.journal.writer.WriterSlot):
# two, so that one batch is being gathered while the other is written. More
# cost more: four made smaller batches, more transactions and more CPU on
# both sides (a fleet of 1,000 targets on two cores: 5.4-6.5 s against
# 4.4-5.1 s with two; bench/fleet_bench.py's runbook child, 4 rounds each).
POOL = 2


def ends_run(change: dict[str, Any]) -> bool:
    """Whether a change records a run's end (any status but running): its chain is sealed."""
    return change["table"] == "runs" and change["row"].get("status") not in (None, "running")


def stream_of(run_id: str | None, change: dict[str, Any]) -> str:
    """Which chain an event extends."""
    return run_id if run_id and change.get("table") in RUN_TABLES else JOURNAL_WIDE


class PostgresStore(
    MirroredRows, RunTables, SchedulerTables, DrillTables, ApprovalTables, FleetRuns
):
    """A journal in a PostgreSQL schema; one connection, shared under a lock.
    Its readers: of runs, incidents and deliveries, runbook.journal.postgres_read;
    of the scheduler's tables, runbook.journal.postgres_schedule; of drills and
    approvals, runbook.journal.postgres_drill."""

    def __init__(self, config: StoreConfig, *, create: bool = True) -> None:
        self.config = config
        self._writers = WriterSlot(self.config, size=POOL)
        # The heads of the runs this store appends to, as its last append left
        # them (a fleet's writer: a hundred runs, each appended to again and
        # again until its end seals it); used under the lock.
        self._heads: dict[str, tuple[int, str]] = {}
        self._statements: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], bytes] = {}
        self.signer: Signer | None = None
        if config.key_file is not None:
            from runbook.journal.checkpoint import load_signer

            self.signer = load_signer(config.key_file)
        self.lock = threading.RLock()
        self.conn = connect(config)
        self._sending: Sender | None = None
        if create:
            migrate(self.conn, config)

    @property
    def where(self) -> str:
        return self.config.where

    def close(self) -> None:
        try:
            self._writers.close()  # what the runs queued is written first
        finally:
            self.conn.close()

    def writer(self) -> Writer:
        """The group-commit writer the recorders of runs on this store share."""
        return self._writers.get()

    # -- writing ---------------------------------------------------------------

    def append(self, events: list[tuple[str, str | None, str, dict[str, Any]]]) -> list[int]:
        return self.append_prepared(prepare(events))

    def append_prepared(self, events: list[Prepared]) -> list[int]:
        """One transaction, pipelined: the statements go out together and the
        server's answers come back together, one round trip for a batch of
        any size when its chains' heads are known here (`_heads`), two when
        some must be read and locked first. The group writer holds a fleet's
        runs waiting on this: each round trip is a wait for the interpreter's
        lock among a hundred busy threads. An append that needs no answer
        before its COMMIT goes through libpq at once (runbook.journal.postgres_send)."""
        with self.lock:
            known: Mapping[str, tuple[int, str]] | None = self._heads
            again = True  # once more after a lost connection, if it did not commit
            while True:
                assigned: list[dict[str, Any]] = []
                sent = Sent()
                rowids: list[int] | None = None  # once the COMMIT is sent
                try:
                    plan = self._plan(events, known)
                    if plan.at_once:
                        gathered = Statements()
                        rowids, heads, sealed = self._append(events, plan, assigned, sent, gathered)
                        self._sender().send(gathered)
                    else:
                        with self.conn.pipeline(), psycopg.RawCursor(self.conn) as cur:
                            cur.execute(b"BEGIN")
                            if not plan.streams <= plan.heads.keys():
                                # Some head unknown: all read and locked, not some taken
                                # as known and others locked out of _lock_chains's order.
                                plan.heads = self._lock_chains(plan.streams)
                            rowids, heads, sealed = self._append(events, plan, assigned, sent, cur)
                            cur.execute(b"COMMIT")
                except BaseException as exc:
                    lost = self._lost(exc)
                    self._roll_back()
                    self._heads.clear()
                    if lost and rowids is not None and landed(self.conn, self.where, exc, sent):
                        self._remember(sent.heads, sent.sealed)
                        return rowids  # numbered before the COMMIT was sent
                    for row in assigned:
                        del row["id"]  # numbered anew if the append is made again
                    if lost and again and not self.conn.broken:
                        # Not in the journal (the server restarted, the backend was
                        # terminated, a network cut): once more, on the new connection.
                        again, known = False, None
                        continue
                    if known is not None and stale(exc):
                        # A head taken as known had moved (another appender: a
                        # rollback, a resume on another host; a run id taken
                        # twice): the events' (stream, pos) key refused ours.
                        # Again, every head read and locked.
                        known = None
                        continue
                    if isinstance(exc, psycopg.errors.UniqueViolation):
                        # A claim taken twice (a run id, an open incident's key):
                        # the statement's error surfaces at the pipeline's sync.
                        raise Conflict(
                            f"{exc.diag.table_name}: {exc.diag.message_primary}"
                        ) from None
                    if isinstance(exc, psycopg.Error):
                        raise JournalError(
                            f"cannot write the journal {self.where}: {exc}"
                        ) from None
                    raise
                self._remember(heads, sealed)
                return rowids

    def _sender(self) -> Sender:
        """The sender of the connection in use (a new one after `_roll_back`:
        what was prepared went with the old connection)."""
        if self._sending is None or self._sending.conn is not self.conn:
            self._sending = Sender(self.conn)
        return self._sending

    def _plan(self, events: list[Prepared], known: Mapping[str, tuple[int, str]] | None) -> Plan:
        """The chains an append extends and the heads it takes as known (none
        when `known` is None: all read and locked); whether it can go at once."""
        # A checkpoint (asked for, with a key) and seals extend the journal-wide chain.
        sign = self.signer is not None and any(e[3]["table"] == CHECKPOINTS for e in events)
        # The journal-wide chain is what every run's end waits on: the server
        # extends it (extend_chain, the last statement before the COMMIT), so
        # its row is locked for microseconds, not across a round trip and the
        # hashing here. Only a signed checkpoint needs its head here: it
        # signs it, so that append locks it with the rest and chains it here.
        streams = {stream_of(run_id, change) for _, run_id, _, change, _ in events}
        streams.discard(JOURNAL_WIDE)
        heads = known_heads(events, streams, known) if known is not None else {}
        if sign:
            streams.add(JOURNAL_WIDE)
        # Sealing a run reads its head if it is not known (never read at once).
        ended = {
            str(c["row"]["id"]) for *_, c, payload in events if payload is None and ends_run(c)
        }
        at_once = (
            not sign
            and streams <= heads.keys()
            and ended <= heads.keys()
            and all(payload is not None or unanswered(change) for *_, change, payload in events)
        )
        return Plan(streams, heads, sign, at_once)

    def _remember(self, heads: dict[str, tuple[int, str]], sealed: list[str]) -> None:
        """The heads a committed append left, for the next append of the same
        runs; a sealed run's forgotten (it is not appended to again here)."""
        if len(self._heads) + len(heads) > HEADS_KEPT:
            self._heads.clear()
        self._heads.update(heads)
        self._heads.pop(JOURNAL_WIDE, None)  # extended by the server, or signed under a lock
        for run_id in sealed:
            self._heads.pop(run_id, None)

    def _lost(self, exc: BaseException) -> bool:
        """Whether `exc` is this store's connection lost (the server restarted
        or killed, the backend terminated, a network cut), not a statement's
        own error: what an append or a read may be made again after."""
        return connection_lost(exc, self.conn)

    def _roll_back(self) -> None:
        """After a failed append: a connection of its own again. The server
        skips what follows an error in a pipeline, the preparing of a statement
        too, while psycopg may count that statement prepared (at its fifth
        use) and Bind it by name from then on: after a few refused appends (a
        run id or an open incident's key taken twice), later ones failed on
        "prepared statement does not exist". The transaction the failed
        append left open goes with the old connection."""
        try:
            fresh = connect(self.config)
        except JournalError:
            # Unreachable now: the old connection, rolled back if it can be
            # (the next append fails as this one did, and tries again).
            with contextlib.suppress(psycopg.Error):
                if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    self.conn.execute(b"ROLLBACK")
            return
        old, self.conn = self.conn, fresh
        with contextlib.suppress(psycopg.Error):
            old.close()

    def _append(
        self,
        events: list[Prepared],
        plan: Plan,
        assigned: list[dict[str, Any]],
        sent: Sent,
        sink: Sink,
    ) -> tuple[list[int], dict[str, tuple[int, str]], list[str]]:
        """Send an append's statements to `sink` (a cursor in psycopg's
        pipeline, or gathered to go at once): its rowids, the heads it
        leaves and the runs it seals. Every head is in `plan.heads` (known,
        or read and locked): the chains' rows are written first, which locks
        them in the order `_lock_chains` would, and a stale head fails the
        events' (stream, pos) key. Rows given an id by the server are added
        to `assigned`; what it sends, to `sent`."""
        sign, heads = plan.sign, dict(plan.heads)
        rowids: list[int] = []
        chained: list[tuple[str, int, str, str | None, str, str, str, str]] = []
        wide: list[tuple[str, str | None, str, str, str]] = []  # for extend_chain
        sent.heads, sent.wide = heads, wide  # as they will be once sent
        last_at = ""

        def add(stream: str, at: str, run_id: str | None, kind: str, payload: str) -> None:
            nonlocal last_at
            last_at = at
            digest = hashing.record_digest(at, run_id, kind, payload)
            if stream == JOURNAL_WIDE and not sign:
                wide.append((at, run_id, kind, payload, digest))
                return
            length, prev = heads[stream]
            hashed = hashing.chain(prev, digest)
            chained.append((stream, length + 1, at, run_id, kind, payload, prev, hashed))
            heads[stream] = (length + 1, hashed)

        ended: list[str] = []
        for at, run_id, kind, change, payload in events:
            stream = stream_of(run_id, change)
            if change["table"] == CHECKPOINTS:
                continue  # made last, over everything this append wrote
            if payload is None:
                row = change["row"]
                rowid = self._apply(sink, change["table"], change["op"], row, change.get("expect"))
                if rowid is not None:  # a row the server numbered (MirroredRows._apply)
                    rowids.append(rowid)
                    row["id"] = rowid
                    assigned.append(row)
                if ends_run(change):
                    ended.append(str(row["id"]))
                payload = canonical({k: v for k, v in change.items() if k != "expect"})
            add(stream, at, run_id, kind, payload)
        for run_id in ended:
            # The run's chain, tied into the journal-wide one: cutting or
            # rewriting the run's events afterwards breaks the seal.
            length, head = heads.get(run_id) or self._chain(run_id)
            seal = {
                "table": SEALS,
                "op": "insert",
                "row": {"run": run_id, "length": length, "head": head},
            }
            add(JOURNAL_WIDE, last_at, None, _ENDED_KIND, canonical(seal))
        sent.sealed = ended
        if sign and self.signer is not None:
            length, head = heads[JOURNAL_WIDE]
            if length > 0:
                at = events[-1][0]
                checkpoint = self.signer.sign(length, head, at)
                payload = canonical(
                    {"table": CHECKPOINTS, "op": "insert", "row": checkpoint.serialize()}
                )
                add(JOURNAL_WIDE, at, None, "checkpoint", payload)
        # The chains' rows first, in _lock_chains's order: an append whose
        # heads were known here takes their locks now, as one that read them
        # took them before; then the events, whose (stream, pos) key refuses
        # a head that was stale.
        moved = [(stream, *heads[stream]) for stream in lock_order(heads)]
        for heads_part in in_parts(moved, rows.ROWS_A_STATEMENT):
            sink.execute(rows.upsert_chains(len(heads_part)), flat(heads_part))
        for part in in_parts(chained, rows.ROWS_A_STATEMENT):
            sink.execute(rows.insert_events(len(part)), flat(part))
        # Last: from here to the COMMIT the journal-wide chain is locked.
        # (Its failure fails the append: the pipeline's sync raises it.)
        for wide_part in in_parts(wide, rows.ROWS_A_STATEMENT):
            sink.execute(rows.extend_chain(len(wide_part)), [JOURNAL_WIDE, *flat(wide_part)])
        return rowids, heads, ended

    def import_events(self, source: str, events: list[tuple[int, Prepared]]) -> int:
        """Append events copied from another journal (`source` names it), in
        one transaction with the mark of how far that copy got: events at or
        below the mark are skipped, so copying again copies nothing twice.
        Returns how many were appended."""
        key = f"copied_from:{source}"
        try:
            with self.lock, self.conn.transaction():
                self.conn.execute(
                    "INSERT INTO meta (key, value) VALUES (%s, '0') ON CONFLICT (key) DO NOTHING",
                    (key,),
                )
                row = self.conn.execute(
                    "SELECT value FROM meta WHERE key = %s FOR UPDATE", (key,)
                ).fetchone()
                done = int(str(row[0])) if row else 0
                fresh = [(seq, event) for seq, event in events if seq > done]
                if not fresh:
                    return 0
                copied = [event for _, event in fresh]
                plan = self._plan(copied, None)
                plan.heads = self._lock_chains(plan.streams)
                with psycopg.RawCursor(self.conn) as cur:
                    self._append(copied, plan, [], Sent(), cur)
                for table in ("incidents", "deliveries"):
                    # Copied rows keep their ids: new ones must come after them.
                    self.conn.execute(
                        sql.SQL(
                            "SELECT setval(pg_get_serial_sequence({}, 'id'),"
                            " greatest((SELECT max(id) FROM {}), 1))"
                        ).format(sql.Literal(table), sql.Identifier(table))
                    )
                self.conn.execute(
                    "UPDATE meta SET value = %s WHERE key = %s", (str(fresh[-1][0]), key)
                )
                return len(fresh)
        except psycopg.errors.UniqueViolation as exc:
            raise Conflict(f"{exc.diag.table_name}: {exc.diag.message_primary}") from None
        except psycopg.Error as exc:
            raise JournalError(f"cannot write the journal {self.where}: {exc}") from None

    def _lock_chains(self, streams: Collection[str]) -> dict[str, tuple[int, str]]:
        """The heads of `streams`, locked until the append commits; always in
        the same order (sorted, the journal-wide chain last, where extend_chain
        takes it), so two appends cannot deadlock. One statement for up to
        ROWS_A_STATEMENT of them: a batch of a fleet's records holds many runs'
        streams."""
        if not streams:
            return {}  # only journal-wide events, chained by extend_chain: no round trip
        # Byte order, in Python as in the statement (COLLATE "C"): a batch of
        # more streams than a statement takes locks them part after part, in
        # the same order as any other append would.
        ordered = lock_order(streams)
        found = []
        with psycopg.RawCursor(self.conn) as cur:
            for part in in_parts(ordered, rows.ROWS_A_STATEMENT):
                cur.execute(rows.lock_chains(len(part)), [GENESIS, JOURNAL_WIDE, *part])
                found += cur.fetchall()
        heads = {str(row[0]): (int(row[1]), str(row[2])) for row in found}
        assert len(heads) == len(streams)
        return heads

    def _chain(self, stream: str) -> tuple[int, str]:
        row = self.conn.execute(
            "SELECT length, head FROM chains WHERE stream = %s", (stream,)
        ).fetchone()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)

    # -- reading ---------------------------------------------------------------

    def query(
        self, text: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[dict[str, Any]]:
        """Rows by column name, JSON columns parsed. A read whose connection
        was lost (the server restarted, the backend terminated) is made once
        more on a new one: a read changes nothing."""
        with self.lock:
            again = True
            while True:
                try:
                    with self.conn.cursor(row_factory=dict_row) as cur:
                        cur.execute(text.encode(), params)  # our own SQL, never a user's
                        rows = cur.fetchall()
                    return [decode(dict(r)) for r in rows]
                except psycopg.Error as exc:
                    if again and self._lost(exc):
                        self._roll_back()
                        again = False
                        if not self.conn.broken:
                            continue
                    raise JournalError(f"cannot read the journal {self.where}: {exc}") from None

    def _one(self, text: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self.query(text, params)
        return rows[0] if rows else None

    def head(self) -> tuple[int, str]:
        row = self._one("SELECT length, head FROM chains WHERE stream = %s", (JOURNAL_WIDE,))
        return (int(row["length"]), str(row["head"])) if row else (0, GENESIS)

    def latest_checkpoint(self) -> tuple[int, Any] | None:
        row = self._one(
            "SELECT pos, payload FROM events WHERE stream = %s AND kind = 'checkpoint'"
            " ORDER BY pos DESC LIMIT 1",
            (JOURNAL_WIDE,),
        )
        return checkpoint_in(row, "pos")

    def events(self) -> list[EventRecord]:
        return records_of(EventRecord, self.query("SELECT * FROM events ORDER BY stream, pos"))

    def verify(self) -> list[str]:
        from runbook.journal.postgres_verify import verify_connection

        with self.lock:
            return verify_connection(self.conn, where=self.where).problems
