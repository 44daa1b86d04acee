"""The PostgreSQL journal's append in one go: BEGIN, its statements, COMMIT
and a sync written to libpq's pipeline together, the answers read together.

psycopg's pipeline runs its machinery per statement (a query object, the
cursor's state, a wait on the socket); a fleet's writer sends about fifteen
statements a batch, and that machinery was half the writer's CPU, which a
fleet's hundred target threads share (bench/fleet_bench.py: 0.50 against
0.28 s of the writer's CPU for 1,000 runs, the whole client 2.3 against
2.0 s). An append that needs no answer before its COMMIT (its heads known,
no row numbered by the server, no conditional update, no checkpoint to sign)
goes this way; any other, through psycopg's pipeline (runbook.journal.postgres).

The values are still bound: each statement is prepared once per connection
(its text never holds a value) and executed with its values as parameters,
dumped by psycopg's own Transformer as a psycopg cursor would dump them.
"""

from __future__ import annotations

import select
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer


class Statements:
    """An append's statements (text with $n placeholders, values), gathered
    to be sent at once; the sink `PostgresStore._write_append` writes to."""

    def __init__(self) -> None:
        self.gathered: list[tuple[bytes, Sequence[Any]]] = []

    def execute(self, query: bytes, params: Sequence[Any]) -> None:
        self.gathered.append((query, params))


class Sender:
    """Sends gathered statements on one connection, each text prepared there
    once (a name per text, known to be prepared only once the server said so:
    a statement skipped after an error in the pipeline was never prepared)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self._names: dict[bytes, bytes] = {}

    def send(self, statements: Statements) -> None:
        """BEGIN, the statements, COMMIT: one write, one read. The first
        statement's error is raised (the server skipped the rest, COMMIT
        included, and the transaction is rolled back); a connection lost on
        the way raises psycopg.OperationalError without a SQLSTATE, which
        runbook.pg.lost counts lost (whether the COMMIT landed is then asked)."""
        conn, pgconn = self.conn, self.conn.pgconn
        dumper = Transformer(conn)
        # Every value dumped before anything is sent: one psycopg cannot
        # dump fails the append with nothing half-written to the socket.
        dumped = [
            (query, dumper.dump_sequence(params, [PyFormat.TEXT] * len(params)))
            for query, params in statements.gathered
        ]
        # What each result answers: a PREPARE (the text it makes ready), or a statement.
        expected: list[bytes | None] = []
        fresh: dict[bytes, bytes] = {}
        with conn.lock:
            pgconn.enter_pipeline_mode()
            pgconn.send_query_params(b"BEGIN", None)
            expected.append(None)
            for query, values in dumped:
                name = self._names.get(query) or fresh.get(query)
                if name is None:
                    name = fresh[query] = b"runbook_append_%d" % (len(self._names) + len(fresh))
                    pgconn.send_prepare(name, query)
                    expected.append(query)
                pgconn.send_query_prepared(name, values)
                expected.append(None)
            pgconn.send_query_params(b"COMMIT", None)
            expected.append(None)
            pgconn.pipeline_sync()
            self._flush(pgconn)
            error = self._read(pgconn, expected, fresh)
            pgconn.exit_pipeline_mode()
        if error is not None:
            raise error

    def _flush(self, pgconn: pq.abc.PGconn) -> None:
        while pgconn.flush():  # 1: more to send once the socket takes it
            select.select([pgconn.socket], [pgconn.socket], [])

    def _read(
        self, pgconn: pq.abc.PGconn, expected: list[bytes | None], fresh: dict[bytes, bytes]
    ) -> psycopg.Error | None:
        """Every result up to the sync; the first error, returned."""
        error: psycopg.Error | None = None
        answered = 0
        while True:
            if pgconn.is_busy():
                select.select([pgconn.socket], [], [])
                pgconn.consume_input()
                continue
            result = pgconn.get_result()
            if result is None:
                if pgconn.status == pq.ConnStatus.BAD:
                    raise psycopg.OperationalError(
                        pgconn.error_message.decode(errors="replace").strip()
                        or "the connection was lost"
                    )
                continue  # the end of one statement's results
            status = result.status
            if status == pq.ExecStatus.PIPELINE_SYNC:
                return error
            prepared = expected[answered] if answered < len(expected) else None
            answered += 1
            if status == pq.ExecStatus.FATAL_ERROR:
                if error is None:
                    error = psycopg.errors.error_from_result(
                        result, encoding=self.conn.info.encoding
                    )
            elif status == pq.ExecStatus.COMMAND_OK and prepared is not None:
                self._names[prepared] = fresh[prepared]


@dataclass
class Plan:
    """An append's chains (`streams`), the heads it takes as known, whether
    it signs a checkpoint, and whether it can go at once."""

    streams: set[str]
    heads: dict[str, tuple[int, str]]
    sign: bool
    at_once: bool
