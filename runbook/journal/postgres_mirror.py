"""The PostgreSQL journal's mirrored rows: the INSERT or UPDATE of a run's,
an incident's, a delivery's … row that an event carries, sent in the
append's transaction. Mixed into runbook.journal.postgres.PostgresStore,
whose connection and lock they use."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from runbook.journal.events import TABLES, Conflict


class MirroredRows:
    """Each event's row written to its table, by statements composed once
    per shape of row."""

    conn: psycopg.Connection[Any]
    _statements: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], bytes]

    def _apply(
        self, table: str, op: str, row: dict[str, Any], expect: dict[str, Any] | None = None
    ) -> int | None:
        """Send the row's statement; the id the server gave it, for an
        incident's or a delivery's row without one (None otherwise)."""
        if op == "insert":
            numbered = table in ("incidents", "deliveries") and "id" not in row
            query = self._statement(table, op, tuple(row), ())
            # A conflict aborts the whole append, as in the SQLite journal: its
            # UniqueViolation becomes a Conflict where the append ends.
            cursor = self.conn.execute(query, tuple(row.values()))
            found = cursor.fetchone() if numbered else None
            return int(found[0]) if found else None
        keys = TABLES[table]
        values = (
            [v for k, v in row.items() if k not in keys]
            + [row[k] for k in keys]
            + list((expect or {}).values())
        )
        cursor = self.conn.execute(
            self._statement(table, op, tuple(row), tuple(expect or ())), values
        )
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
        if op == "insert":
            numbered = table in ("incidents", "deliveries") and "id" not in columns
            query = sql.SQL("INSERT INTO {} ({}) VALUES ({}){}").format(
                name,
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join(sql.Placeholder() * len(columns)),
                sql.SQL(" RETURNING id") if numbered else sql.SQL(""),
            )
        else:
            keys = TABLES[table]
            sets = sql.SQL(", ").join(
                sql.SQL("{} = %s").format(sql.Identifier(k)) for k in columns if k not in keys
            )
            # The key by `=` (a primary key, never null): IS NOT DISTINCT FROM
            # cannot use its index, and every run's end scanned all the runs.
            # An expected value may be null: it is only compared on the row found.
            conditions = sql.SQL(" AND ").join(
                [sql.SQL("{} = %s").format(sql.Identifier(k)) for k in keys]
                + [
                    sql.SQL("{} IS NOT DISTINCT FROM %s").format(sql.Identifier(k))
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
