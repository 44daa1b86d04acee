"""Whether an error is a connection lost, not a statement's own error: the
one rule the engine (a step caught mid-flight), the journal (an append or a
read made again after asking what landed) and the queue (jobs looked for
before they are queued again) decide by."""

from __future__ import annotations

from typing import Any

import psycopg

# The server ending the session: 57P01 terminated (pg_terminate_backend, a
# fast shutdown), 57P02 crash shutdown, 57P05 idle session timeout.
_ENDED = frozenset({"57P01", "57P02", "57P05"})


def connection_lost(
    error: BaseException | None, conn: psycopg.Connection[Any] | None = None
) -> bool:
    """No answer at all (the client's own error, with no SQLSTATE), a
    connection exception (08…) or the session ended by the server; or `conn`
    known broken. Not `conn.broken` alone: libpq may fail a send or a
    pipeline's exit on a dead socket before it marks the connection bad
    ("cannot exit pipeline mode while busy"), and what was sent may or may
    not have reached the server all the same."""
    if not isinstance(error, psycopg.OperationalError):
        return False
    if conn is not None and conn.broken:
        return True
    state = error.sqlstate
    return state is None or state.startswith("08") or state in _ENDED
