"""The demo database (sql/demo/): the tables, views and functions of the four
operations manuals, with faults planted so that gates fire."""

from __future__ import annotations

import hashlib
from pathlib import Path

from runbook import resources


def files() -> list[Path]:
    return sorted((resources.sql_dir() / "demo").glob("*.sql"))


def digest() -> str:
    """Changes whenever a demo file does: a loaded database says which it has."""
    h = hashlib.sha256()
    for path in files():
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


MARK = "runbook demo database"


def load(dsn: str) -> None:
    """Load every demo file, in order, into the (empty) database at `dsn`."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        for path in files():
            conn.execute(path.read_text("utf-8"))
        name = conn.info.dbname
        comment = f"{MARK} {digest()}"
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(name), sql.Literal(comment)
            )
        )


def loaded(dsn: str) -> bool:
    """Whether the database holds the current demo (same files)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()"
        ).fetchone()
    return bool(row and row[0] == f"{MARK} {digest()}")
