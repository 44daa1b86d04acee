"""The PostgreSQL journal's mirrored rows: the INSERT or UPDATE of a run's,
an incident's, a delivery's … row that an event carries, sent in the
append's transaction. Mixed into runbook.journal.postgres.PostgresStore,
whose connection and lock they use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import psycopg
from psycopg import sql

from runbook.journal.events import TABLES, Conflict

NUMBERED = ("incidents", "deliveries")  # rows the server gives an id (RETURNING id)


class Sink(Protocol):
    """Where an append's statements go: a psycopg cursor in a pipeline (its
    answers fetched), or runbook.journal.postgres_send's Statements."""

    def execute(self, query: bytes, params: Sequence[Any]) -> Any: ...


def unanswered(change: dict[str, Any]) -> bool:
    """Whether a mirrored change's statement needs no answer before the
    COMMIT: not a row the server numbers, not a conditional update."""
    if change["op"] == "insert":
        return not (change["table"] in NUMBERED and "id" not in change["row"])
    return not change.get("expect")


class MirroredRows:
    """Each event's row written to its table, by statements composed once
    per shape of row."""

    conn: psycopg.Connection[Any]
    _statements: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], bytes]

    def _apply(
        self,
        sink: Sink,
        table: str,
        op: str,
        row: dict[str, Any],
        expect: dict[str, Any] | None = None,
    ) -> int | None:
        """Send the row's statement to `sink`; the id the server gave it, for
        an incident's or a delivery's row without one (None otherwise: only
        such a statement, or a conditional update, is asked for its answer)."""
        if op == "insert":
            numbered = table in NUMBERED and "id" not in row
            query = self._statement(table, op, tuple(row), ())
            # A conflict aborts the whole append, as in the SQLite journal: its
            # UniqueViolation becomes a Conflict where the append ends.
            cursor = sink.execute(query, tuple(row.values()))
            found = cursor.fetchone() if numbered else None
            return int(found[0]) if found else None
        keys = TABLES[table]
        values = (
            [v for k, v in row.items() if k not in keys]
            + [row[k] for k in keys]
            + list((expect or {}).values())
        )
        cursor = sink.execute(self._statement(table, op, tuple(row), tuple(expect or ())), values)
        # RETURNING, not rowcount: in a pipeline, fetching is what waits for it.
        if expect and cursor.fetchone() is None:
            raise Conflict(f"{table} {[row[k] for k in keys]} changed meanwhile")
        return None

    def _statement(
        self, table: str, op: str, columns: tuple[str, ...], expected: tuple[str, ...]
    ) -> bytes:
        """The INSERT or UPDATE of a mirrored row with these columns, composed
        once per store (a fleet's runs write rows of the same few shapes);
        used under the store's lock, like the connection."""
        shape = (table, op, columns, expected)
        found = self._statements.get(shape)
        if found is not None:
            return found
        name = sql.Identifier(table)
        # $n placeholders, numbered in the order _apply gives the values: a
        # raw cursor's, and what runbook.journal.postgres_send prepares.
        number = iter(range(1, 1 + len(columns) + len(expected))).__next__
        if op == "insert":
            numbered = table in NUMBERED and "id" not in columns
            query = sql.SQL("INSERT INTO {} ({}) VALUES ({}){}").format(
                name,
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join(sql.SQL(f"${number()}") for _ in columns),
                sql.SQL(" RETURNING id") if numbered else sql.SQL(""),
            )
        else:
            keys = TABLES[table]
            sets = sql.SQL(", ").join(
                sql.SQL("{} = " + f"${number()}").format(sql.Identifier(k))
                for k in columns
                if k not in keys
            )
            # The key by `=` (a primary key, never null): IS NOT DISTINCT FROM
            # cannot use its index, and every run's end scanned all the runs.
            # An expected value may be null: it is only compared on the row found.
            conditions = sql.SQL(" AND ").join(
                [sql.SQL("{} = " + f"${number()}").format(sql.Identifier(k)) for k in keys]
                + [
                    sql.SQL("{} IS NOT DISTINCT FROM " + f"${number()}").format(sql.Identifier(k))
                    for k in expected
                ]
            )
            query = sql.SQL("UPDATE {} SET {} WHERE {}{}").format(
                name, sets, conditions, sql.SQL(" RETURNING 1") if expected else sql.SQL("")
            )
        text = query.as_bytes(self.conn)
        if len(self._statements) < 1000:  # a few shapes in practice; bounded all the same
            self._statements[shape] = text
        return text
