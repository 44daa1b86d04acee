"""The PostgreSQL journal's schema: connecting to it, creating and upgrading it.

Migrations are the numbered files of `sql/journal/` (001_initial.sql, …),
applied in order in one transaction each, under an advisory lock so that many
processes opening a new journal at once apply each exactly once. The version
reached is `schema_version` in the schema's `meta` table.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from runbook.errors import JournalError
from runbook.journal.store import StoreConfig
from runbook.redact import first_line
from runbook.resources import sql_dir

_FILE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
EMBEDDED_DATABASE = "runbook_journal"
# The mirrored tables (runbook.journal.events.TABLES) a later migration added,
# and which: a journal not yet upgraded lacks them without anything being
# wrong (runbook.journal.postgres_verify).
TABLES_SINCE = {
    "authorizations": 2,
    "fires": 3,
    "pauses": 3,
    "drills": 4,
    "drill_notes": 4,
    "approvals": 5,
    "approval_votes": 5,
}


def migrations() -> dict[int, Path]:
    """The shipped migrations by number."""
    found: dict[int, Path] = {}
    for path in sorted((sql_dir() / "journal").glob("*.sql")):
        match = _FILE.match(path.name)
        if match:
            found[int(match.group(1))] = path
    return found


def latest_version() -> int:
    return max(migrations(), default=0)


def resolve_dsn(config: StoreConfig) -> str:
    """The DSN to connect to; `embedded`: the embedded server's journal
    database, the server started (and the database made) if need be."""
    if config.dsn != "embedded":
        return config.dsn or ""
    from runbook.pg import embedded, sandbox

    root = config.root or Path.cwd()
    server = embedded.running(sandbox.pgdata(root)) or embedded.start(sandbox.pgdata(root))
    embedded.ensure_database(server, EMBEDDED_DATABASE)
    return server.database_dsn(EMBEDDED_DATABASE)


def connect(config: StoreConfig) -> psycopg.Connection[Any]:
    """An autocommit connection whose search_path is the journal's schema (set
    at connect time: no round trip of its own; a fleet opens many)."""
    dsn = resolve_dsn(config)
    # A DSN with options of its own keeps them: the search_path is then SET.
    given = "options" in dsn
    extra: dict[str, Any] = (
        {} if given else {"options": f"-c search_path={_option_value(config.schema)}"}
    )
    try:
        conn = psycopg.connect(
            dsn, autocommit=True, connect_timeout=10, application_name="runbook", **extra
        )
    except psycopg.Error as exc:
        raise JournalError(f"cannot open the journal {config.where}: {first_line(exc)}") from None
    if not given:
        return conn
    try:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(config.schema)))
    except psycopg.Error as exc:
        conn.close()
        raise JournalError(f"cannot open the journal {config.where}: {first_line(exc)}") from None
    return conn


def _option_value(schema: str) -> str:
    """The schema as a search_path in libpq's `options`: quoted as an
    identifier, then white space and backslashes escaped, as libpq splits options."""
    quoted = '"' + schema.replace('"', '""') + '"'
    return re.sub(r"([\s\\])", r"\\\1", quoted)


def version(conn: psycopg.Connection[Any], schema: str) -> int:
    exists = conn.execute("SELECT to_regclass(%s)", (f"{schema}.meta",)).fetchone()
    if exists is None or exists[0] is None:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(str(row[0])) if row else 0


def migrate(conn: psycopg.Connection[Any], config: StoreConfig) -> list[int]:
    """Bring the schema up to date; the migrations applied (none: it was)."""
    shipped = migrations()
    newest = max(shipped, default=0)
    try:
        current = version(conn, config.schema)
        if current > newest:
            raise JournalError(
                f"the journal {config.where} has schema version {current}; this runbook knows"
                f" {newest}: upgrade runbook"
            )
        if current == newest:
            return []  # the usual case: no lock taken
        applied = []
        with conn.transaction():
            # One process migrates; the others wait here, then find it done.
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('runbook journal ' || %s))",
                (config.schema,),
            )
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(config.schema))
            )
            current = version(conn, config.schema)
            for number in sorted(n for n in shipped if n > current):
                conn.execute(shipped[number].read_text(encoding="utf-8").encode())
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    (str(number),),
                )
                applied.append(number)
            if current == 0:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('hash_version', %s)",
                    ('{"from_seq":1,"version":2}',),
                )
        return applied
    except psycopg.Error as exc:
        raise JournalError(f"cannot set up the journal {config.where}: {first_line(exc)}") from None
