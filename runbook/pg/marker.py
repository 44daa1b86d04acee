"""Exactly-once bookkeeping in the target: one marker row per writing step.

A writing step runs in a transaction of its own (a `transaction:` block in its
block's) that also inserts one row into `runbook.applied`, keyed by a token
runbook chose and journaled before the step ran. The row exists if and only if
that transaction committed. That is what `runbook resume` asks after a crash —
not the transaction id alone: a server killed before it flushed its WAL hands
the same ids out again after recovery, so an id can look committed (another
transaction's) or "in the future" when the step never happened. This is the way
Flyway and Liquibase keep their history in the target.

What runbook writes in the target (created on the first writing step, in a
transaction of its own; nothing else is ever written there):

    CREATE SCHEMA runbook;
    CREATE TABLE runbook.applied (token uuid PRIMARY KEY, run_id text,
        step text, applied_at timestamptz DEFAULT now());

A role that may not create the schema still runs its steps, without markers:
such a step caught by a crash is `unknown` on resume, never guessed.
"""

from __future__ import annotations

import enum
from typing import Any

import psycopg
from psycopg import errors as pgerrors

TABLE = "runbook.applied"
PROBE_WAIT = "2s"  # how long the probe waits for an in-flight transaction to end

_CREATE = """
CREATE SCHEMA IF NOT EXISTS runbook;
CREATE TABLE IF NOT EXISTS runbook.applied (
    token uuid PRIMARY KEY,
    run_id text NOT NULL,
    step text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE runbook.applied IS
    'runbook: one row per committed writing step (exactly-once bookkeeping; see runbook''s README)';
"""


class Fate(enum.Enum):
    COMMITTED = "committed"
    NOT_COMMITTED = "not committed"
    IN_PROGRESS = "in progress"


def _exists(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT to_regclass('runbook.applied') IS NOT NULL").fetchone()
    return bool(row and row[0])


def ensure(conn: psycopg.Connection[Any]) -> bool:
    """Create the marker table if it is missing (autocommit connection, outside
    any transaction); False if this role cannot create or write it."""
    try:
        if not _exists(conn):
            with conn.transaction():
                # Two runs' first writes at once: one creates, the other waits.
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('runbook.applied'))")
                conn.execute(_CREATE)
        row = conn.execute("SELECT has_table_privilege('runbook.applied', 'INSERT')").fetchone()
        return bool(row and row[0])
    except (pgerrors.InsufficientPrivilege, pgerrors.ReadOnlySqlTransaction):
        return False


def insert(conn: psycopg.Connection[Any], token: str, run_id: str, step: str) -> str:
    """Inside the step's open transaction: its marker, and the transaction's id."""
    row = conn.execute(
        "INSERT INTO runbook.applied (token, run_id, step) VALUES (%s, %s, %s)"
        " RETURNING txid_current()::text",
        (token, run_id, step[:200]),
    ).fetchone()
    return str(row[0]) if row else ""


def probe(conn: psycopg.Connection[Any], token: str) -> Fate:
    """Did the transaction that inserted `token` commit?

    The probe inserts the same token and rolls back: a committed marker makes
    the insert fail on the primary key; a transaction still open on the server
    makes it wait on that key (then `IN_PROGRESS`); otherwise it goes through,
    and no such transaction ever committed. Needs a connection in autocommit mode.
    """
    if not _exists(conn):
        return Fate.NOT_COMMITTED
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET TRANSACTION READ WRITE")
            conn.execute(f"SET LOCAL lock_timeout = '{PROBE_WAIT}'")
            conn.execute(
                "INSERT INTO runbook.applied (token, run_id, step) VALUES (%s, 'probe', 'probe')",
                (token,),
            )
    except pgerrors.UniqueViolation:
        return Fate.COMMITTED
    except pgerrors.LockNotAvailable:
        return Fate.IN_PROGRESS
    return Fate.NOT_COMMITTED
