"""A run's connection to one target: timeouts, application_name, read-only,
notices, transactions and savepoints, and a client-side cancel.

The connection is in autocommit mode at the driver level and runbook says BEGIN
and COMMIT itself: a single-statement step is one round trip (its own implicit
transaction), and `transaction:` blocks and rehearsals get explicit ones.
Session defaults (statement_timeout, lock_timeout, read-only) are set once at
connect time; a step that needs other values changes them only when they differ.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from psycopg import errors as pgerrors

from runbook.errors import StepError, TargetError
from runbook.pg import marker
from runbook.pg.lost import connection_lost
from runbook.pg.watchdog import Watchdog
from runbook.redact import first_line, redact_dsn
from runbook.results import MAX_ROWS, QueryResult
from runbook.sqltemplate.sqlvalues import RenderedSql

CANCEL_GRACE = 2.0  # seconds past the server's own timeout before the client cancels


class StepTimeout(StepError):
    """A statement outran its timeout and was cancelled (SQLSTATE 57014,
    query_canceled); `mid_flight` when the server did not answer the cancel
    and runbook cut the connection (whether the statement ended is unknown)."""

    def __init__(self, message: str, *, mid_flight: bool = False) -> None:
        super().__init__(message, sqlstate="57014", mid_flight=mid_flight)


@dataclass(frozen=True)
class ConnectSpec:
    target: str
    dsn: str  # may hold a password: never shown, never journaled
    application_name: str
    connect_timeout: float = 5.0
    read_only: bool = False
    statement_timeout: float = 300.0
    lock_timeout: float = 5.0
    # A drill's copy carries this comment (runbook.drill.copy): every
    # connection checks it, so a drill never writes to a database without it.
    drill_mark: str | None = None

    @property
    def shown(self) -> str:
        return redact_dsn(self.dsn)


def _ms(seconds: float) -> int:
    return max(0, math.ceil(seconds * 1000))


def _unique_columns(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            seen[name] += 1
            out.append(f"{name}_{seen[name]}")
        else:
            seen[name] = 1
            out.append(name)
    return out


# If runbook dies mid-statement, the server notices and cancels it instead of
# finishing work nobody waits for (PostgreSQL 14+). Asked for when connecting:
# a SET afterwards is a round trip of its own, which a fleet of a thousand
# targets measured at 30 ms a target (bench/fleet_bench.py). A server older
# than 14 refuses the unknown setting, and is connected to again without it.
CHECK_CLIENT_NAME = "client_connection_check_interval"
CHECK_CLIENT = f" -c {CHECK_CLIENT_NAME}=1s"


class Session:
    def __init__(self, spec: ConnectSpec) -> None:
        self.spec = spec
        self.conn: psycopg.Connection[Any] | None = None
        self.notices: list[str] = []
        self._settings: dict[str, int | None] = {}
        self._watchdog = Watchdog()
        self._cursor: psycopg.Cursor[Any] | None = None
        self._encoding = "utf-8"
        self.backend_pid: int | None = None
        self._markers: bool | None = None  # may this session write marker rows?
        self.refused: str | None = None  # why the last attempt to connect failed
        # A statement's error said the connection is gone, whether or not
        # libpq has marked it bad yet (a send failed on a dead socket).
        self._cut = False
        # Set by interrupt() from another thread (a fleet's Ctrl-C): the
        # statement going is cancelled and becomes a KeyboardInterrupt here,
        # as Ctrl-C is in a run of its own.
        self.interrupted = False
        # The server could not be reached at all (not even once): the run's
        # status is `unreachable`, apart from failed ones.
        self.unreachable = False
        # A failed connect_ahead: (what it raised, refused, unreachable).
        self._ahead: tuple[BaseException, str | None, bool] | None = None

    # -- connection --------------------------------------------------------

    @property
    def lost(self) -> bool:
        """Whether the target cannot be used any more: the server refused the
        last connection, or the connection broke."""
        return self.refused is not None or (
            self.conn is not None and (self.conn.broken or self._cut)
        )

    def connect_ahead(self) -> None:
        """Connect now, while the caller waits for something else. A refusal
        (or a Ctrl-C) is kept, and the next `connect` raises it, with the
        session's state as it would be had the attempt been made there: a
        step that needs no server never sees it."""
        try:
            self.connect()
        except (TargetError, KeyboardInterrupt) as exc:
            self._ahead = (exc, self.refused, self.unreachable)
            self.refused, self.unreachable = None, False

    def connect(self) -> psycopg.Connection[Any]:
        if self.conn is not None and not self.conn.closed:
            return self.conn
        if self._ahead is not None:
            exc, self.refused, self.unreachable = self._ahead
            self._ahead = None
            raise exc
        if self.interrupted:
            raise KeyboardInterrupt  # interrupted before it connected: no connection made
        spec = self.spec
        # standard_conforming_strings on whatever the server, database or role
        # says: runbook's lexer reads 'a\' as PostgreSQL then does, and a
        # spliced | literal stands where the lexer proved it may.
        options = (
            f"-c statement_timeout={_ms(spec.statement_timeout)}"
            f" -c lock_timeout={_ms(spec.lock_timeout)} -c standard_conforming_strings=on"
        )
        if spec.read_only:
            options += " -c default_transaction_read_only=on"
        try:
            try:
                conn = self._open(options + CHECK_CLIENT)
            except psycopg.OperationalError as exc:
                if CHECK_CLIENT_NAME not in str(exc):
                    raise
                conn = self._open(options)  # before PostgreSQL 14: no such setting
        except psycopg.Error as exc:
            self.refused = first_line(exc)
            self.unreachable = self.backend_pid is None
            raise TargetError(
                f"cannot connect to target {spec.target!r} ({spec.shown}): {self.refused}"
            ) from None
        if spec.drill_mark is not None:
            self._check_mark(conn, spec.drill_mark)
        self.refused = None
        conn.add_notice_handler(self._notice)
        self._settings = {
            "statement_timeout": _ms(spec.statement_timeout),
            "lock_timeout": _ms(spec.lock_timeout),
        }
        self.conn, self._cut = conn, False
        self._cursor = None
        self._encoding = conn.info.encoding  # Python's name for the client encoding
        self.backend_pid = conn.info.backend_pid
        return conn

    def _open(self, options: str) -> psycopg.Connection[Any]:
        spec = self.spec
        conn = psycopg.connect(
            spec.dsn,
            autocommit=True,
            connect_timeout=max(1, math.ceil(spec.connect_timeout)),
            application_name=spec.application_name[:63],
            options=options,
        )
        # A run's statements are each sent a few times at most: psycopg's
        # automatic prepare (after 5 alike) would cost a PREPARE and its
        # bookkeeping on every statement, for nothing.
        conn.prepare_threshold = None
        return conn

    def _check_mark(self, conn: psycopg.Connection[Any], mark: str) -> None:
        row = conn.execute(
            "SELECT current_database(), shobj_description(oid, 'pg_database')"
            " FROM pg_database WHERE datname = current_database()"
        ).fetchone()
        if row is None or row[1] != mark:
            conn.close()
            name = row[0] if row else "?"
            self.refused = f"database {name} does not carry this drill's mark"
            raise TargetError(
                f"target {self.spec.target!r}: database {name} is not this drill's copy "
                "(it does not carry the drill's mark): a drill writes only to its own copy"
            )

    def interrupt(self) -> None:
        """Ctrl-C for this session from another thread: the statement going is
        cancelled, and it and any later one raise KeyboardInterrupt."""
        self.interrupted = True
        conn = self.conn
        if conn is not None and not conn.closed:
            with contextlib.suppress(psycopg.Error):
                conn.cancel_safe(timeout=5.0)

    def _column_name(self, res: Any, index: int) -> str:
        name = res.fname(index)
        return "" if name is None else name.decode(self._encoding)

    def _new_cursor(self, conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
        # A raw cursor takes the statement with PostgreSQL's own $1 placeholders,
        # which rendering has already written (RenderedSql.display): psycopg
        # then need not parse every new statement for %s (about 20 µs a step).
        self._cursor = psycopg.RawCursor(conn)
        return self._cursor

    def _notice(self, diag: pgerrors.Diagnostic) -> None:
        self.notices.append(f"{diag.severity}: {diag.message_primary}")

    def close(self) -> None:
        self._watchdog.close()
        if self.conn is not None and not self.conn.closed:
            with contextlib.suppress(Exception):
                self.conn.close()
        self.conn = None
        self._cursor = None

    @property
    def in_transaction(self) -> bool:
        return (
            self.conn is not None
            and self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
        )

    @property
    def server_version(self) -> int:
        return self.connect().info.server_version

    def in_recovery(self) -> bool:
        """Whether the server is a standby (pg_is_in_recovery()): `run_on` asks."""
        row = self.connect().execute("SELECT pg_is_in_recovery()").fetchone()
        return bool(row and row[0])

    # -- settings and transactions ----------------------------------------

    def _set(self, name: str, ms: int) -> None:
        if self._settings.get(name) == ms:
            return
        assert self.conn is not None
        # Inside a transaction the SET lasts until it ends; a ROLLBACK undoes it,
        # which is why rollbacks forget what we believe is set.
        self.conn.execute(f"SET {name} = {ms}")
        self._settings[name] = ms

    def _forget_settings(self) -> None:
        self._settings = {}

    def command(self, text: str) -> None:
        """A statement of runbook's own (BEGIN, SAVEPOINT, COMMIT …), without
        notices of its own; watched like a step's."""
        conn = self.connect()
        with self._watched(conn):
            conn.execute(text)

    @contextlib.contextmanager
    def _watched(self, conn: psycopg.Connection[Any]) -> Iterator[None]:
        """runbook's own statements under the watchdog, as a step's are: a
        COMMIT or a marker row whose answer never comes would otherwise hold
        the run forever. The session's current statement_timeout, plus the grace."""
        ms = self._settings.get("statement_timeout")
        limit = ms / 1000 if ms else self.spec.statement_timeout
        if limit > 0:
            self._watchdog.arm(conn, limit + CANCEL_GRACE)
        try:
            yield
        except psycopg.Error as exc:
            self._cut = self._cut or connection_lost(exc) or self._watchdog.cut
            if self._watchdog.cut:
                raise self._cut_off(limit) from exc
            raise
        finally:
            self._watchdog.disarm()

    def _cut_off(self, limit: float) -> StepTimeout:
        """The error of a statement whose cancel went unanswered and whose
        connection the watchdog cut: what it did is unknown, and the target
        is lost to this run (it halts; a transactional step's marker says
        on resume whether it committed)."""
        return StepTimeout(
            f"no answer from the server {limit:g}s past the timeout and a cancel: runbook "
            f"cut the connection to target {self.spec.target!r}",
            mid_flight=True,
        )

    def begin(self) -> None:
        self.command("BEGIN")

    def begin_tracked(self, token: str, run_id: str, step: str) -> dict[str, str]:
        """BEGIN, with the step's marker row in the target (`runbook.pg.marker`):
        after a crash, whether that row exists says whether the work committed,
        so resume neither repeats nor skips it. Returns what the journal keeps:
        the marker's token (absent if this role cannot write markers) and the
        transaction id (shown, and the only evidence for a marker-less step)."""
        conn = self.connect()
        with self._watched(conn):
            if self._markers is None:
                self._markers = marker.ensure(conn)
            conn.execute("BEGIN")
            if self._markers:
                return {"marker": token, "xid": marker.insert(conn, token, run_id, step)}
            row = conn.execute("SELECT txid_current()::text").fetchone()
            return {"xid": str(row[0]) if row else ""}

    def step_fate(self, token: str) -> marker.Fate:
        """Whether the step whose marker is `token` committed (see `runbook.pg.marker`)."""
        return marker.probe(self.connect(), token)

    def commit(self) -> None:
        self.command("COMMIT")

    def rollback(self) -> None:
        if self.conn is not None and not self.conn.closed and self.in_transaction:
            self.conn.execute("ROLLBACK")
        self._forget_settings()

    def savepoint(self, name: str) -> None:
        self.command(f"SAVEPOINT {name}")

    def release(self, name: str) -> None:
        self.command(f"RELEASE SAVEPOINT {name}")

    def rollback_to(self, name: str) -> None:
        if self.conn is not None and not self.conn.closed:
            self.conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
        self._forget_settings()

    # -- statements ----------------------------------------------------------

    def mogrify(self, rendered: RenderedSql) -> str:
        """The statement exactly as it would run, values quoted by psycopg."""
        if rendered.params is None:
            return rendered.query
        cur = psycopg.ClientCursor(self.connect())
        return cur.mogrify(rendered.query, rendered.params)

    def execute(
        self,
        statements: list[RenderedSql],
        *,
        timeout: float | None = None,
        lock_timeout: float | None = None,
        max_rows: int = MAX_ROWS,
        sink: RowSink | None = None,
    ) -> QueryResult:
        """Run statements; the last result set with columns gives the rows.
        `sink` (one statement): every row is also handed to it as it arrives."""
        if self.interrupted:
            raise KeyboardInterrupt
        conn = self.conn if self.conn is not None else self.connect()
        statement_timeout = self.spec.statement_timeout if timeout is None else timeout
        wanted = _ms(statement_timeout)
        if self._settings.get("statement_timeout") != wanted:
            self._set("statement_timeout", wanted)
        wanted = _ms(self.spec.lock_timeout if lock_timeout is None else lock_timeout)
        if self._settings.get("lock_timeout") != wanted:
            self._set("lock_timeout", wanted)
        # Several statements with values go one by one; make them all-or-nothing.
        wrap = len(statements) > 1 and not self.in_transaction
        self.notices = []
        rows: list[dict[str, Any]] = []
        columns: list[str] = []
        rowcount = 0
        status = ""
        truncated = False
        started = time.perf_counter()
        if statement_timeout > 0:
            self._watchdog.arm(conn, statement_timeout + CANCEL_GRACE)
        try:
            if wrap:
                conn.execute("BEGIN")
            cur = self._cursor if self._cursor is not None else self._new_cursor(conn)
            for statement in statements:
                if sink is not None:
                    rows, columns, rowcount = _stream(cur, statement, sink, max_rows)
                    truncated = rowcount > len(rows)
                    status = cur.statusmessage or status
                    continue
                cur.execute(statement.display, statement.params)
                while True:
                    # Read through the result itself (not `description`, which
                    # makes a Column object per column per statement).
                    res = cur.pgresult
                    nfields = res.nfields if res is not None else 0
                    count = cur.rowcount
                    if nfields:
                        names = [self._column_name(res, i) for i in range(nfields)]
                        columns = names if len(set(names)) == len(names) else _unique_columns(names)
                        fetched = (
                            cur.fetchall()
                            if 0 <= count <= max_rows
                            else cur.fetchmany(max_rows + 1)
                        )
                        truncated = len(fetched) > max_rows
                        if truncated:
                            fetched = fetched[:max_rows]
                        rows = [dict(zip(columns, r)) for r in fetched]  # noqa: B905 (same result)
                        rowcount = len(rows) if count < 0 else count
                    elif count > 0:
                        rowcount += count
                    status = cur.statusmessage or status
                    if not cur.nextset():
                        break
            if wrap:
                conn.execute("COMMIT")
        except pgerrors.QueryCanceled as exc:
            self._after_error(wrap)
            if self.interrupted:
                raise KeyboardInterrupt from exc
            if self._watchdog.fired:
                raise StepTimeout(
                    f"cancelled by runbook after {statement_timeout:g}s: no answer from the server"
                ) from exc
            if "statement timeout" in str(exc):
                raise StepTimeout(
                    f"timed out after {statement_timeout:g}s (statement_timeout)"
                ) from exc
            raise
        except BaseException as exc:
            self._cut = self._cut or connection_lost(exc) or self._watchdog.cut
            self._after_error(wrap)
            if self._watchdog.cut and isinstance(exc, psycopg.Error):
                raise self._cut_off(statement_timeout) from exc
            raise
        finally:
            self._watchdog.disarm()
        if self.spec.read_only and self._read_only_turned_off(conn):
            self._restore_read_only(conn)
        return QueryResult(
            rows,
            columns,
            rowcount,
            self.notices,
            (time.perf_counter() - started) * 1000,
            status,
            truncated,
        )

    def _read_only_turned_off(self, conn: psycopg.Connection[Any]) -> bool:
        # pgconn's own call: conn.info would build a ConnectionInfo each step.
        reported = conn.pgconn.parameter_status(b"default_transaction_read_only")
        if reported is not None:
            return reported == b"off"
        # PostgreSQL 13 does not report the setting: ask (a round trip a step, there only).
        row = conn.execute("SELECT current_setting('default_transaction_read_only')").fetchone()
        return row is not None and row[0] == "off"

    def _restore_read_only(self, conn: psycopg.Connection[Any]) -> None:
        """A statement turned read-only off (the server reports the setting, from
        PostgreSQL 14): turn it on again before anything else runs, and fail the step."""
        with contextlib.suppress(psycopg.Error):
            if self.in_transaction:
                conn.execute("ROLLBACK")
            conn.execute("SET default_transaction_read_only = on")
        self._forget_settings()
        raise StepError(
            "this step turned read-only off (default_transaction_read_only); the run is "
            "read-only, so it was turned on again and the step failed"
        )

    def _after_error(self, wrapped: bool) -> None:
        if wrapped and self.conn is not None and not self.conn.closed:
            with contextlib.suppress(psycopg.Error):
                self.conn.execute("ROLLBACK")
            self._forget_settings()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.begin()
        try:
            yield
        except BaseException:
            with contextlib.suppress(psycopg.Error):
                self.rollback()
            raise
        self.commit()


class RowSink(Protocol):
    """Where streamed rows go (runbook.actions.export)."""

    def begin(self, columns: list[str]) -> None: ...
    def write(self, row: tuple[Any, ...]) -> None: ...


def _stream(
    cur: psycopg.Cursor[Any], statement: RenderedSql, sink: RowSink, keep: int
) -> tuple[list[dict[str, Any]], list[str], int]:
    """Rows as the server sends them, into `sink`; the first `keep` kept."""
    rows: list[dict[str, Any]] = []
    columns: list[str] = []
    count = 0
    for record in cur.stream(statement.display, statement.params, size=1000):
        if not columns:
            names = [d.name for d in cur.description or ()]
            columns = names if len(set(names)) == len(names) else _unique_columns(names)
            sink.begin(columns)
        sink.write(record)
        if count < keep:
            rows.append(dict(zip(columns, record, strict=True)))
        count += 1
    if not columns:  # no rows: a streamed result does not say its columns then
        sink.begin([])
    return rows, columns, count
