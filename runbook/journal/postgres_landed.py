"""The PostgreSQL journal's append when its connection is lost as it commits
(the server killed or restarted, a network cut, its backend terminated): the
reply may be what was lost, the append in the journal all the same. Made
again blindly, it would be recorded twice; so it is asked, on a new
connection, whether it landed. Only an append known not to have landed is
made again (runbook.journal.writer writes a failed batch again run by run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from runbook.journal.events import AppendUnknown
from runbook.journal.postgres_rows import JOURNAL_WIDE
from runbook.redact import first_line

# How far back among the journal-wide events an append's first one is looked for.
WINDOW = 10_000


@dataclass
class Sent:
    """What an append sends: the heads its runs' chains are left at (position
    and hash, which the chain makes unique), its journal-wide events (chained
    by the server: at, run_id, kind, payload, digest), the runs it seals."""

    heads: dict[str, tuple[int, str]] = field(default_factory=dict)
    wide: list[tuple[str, str | None, str, str, str]] = field(default_factory=list)
    sealed: list[str] = field(default_factory=list)


def landed(conn: psycopg.Connection[Any], where: str, exc: BaseException, sent: Sent) -> bool:
    """Whether the append whose connection was lost once its COMMIT was sent
    committed all the same, asked on `conn` (a new connection). False: it
    did not, and may be made again. AppendUnknown if that cannot be told."""
    outcome: bool | None = None  # no new connection to ask on
    if not (conn.broken or conn.closed):
        try:
            outcome = _found(conn, sent)
        except psycopg.Error:
            outcome = None
    if outcome is not None:
        return outcome
    raise AppendUnknown(
        f"cannot write the journal {where}: the connection was lost as an append "
        f"committed ({first_line(exc)}); whether it did cannot be told, so it is not made again"
    ) from None


def _found(conn: psycopg.Connection[Any], sent: Sent) -> bool | None:
    """True if the append is in the journal, False if not; None if some of it
    is and some not (another appender came between)."""
    found: list[bool] = []
    with conn.cursor() as cur:
        # Every chain the client extended, the journal-wide one too when the
        # append signed a checkpoint (it then chains that one itself).
        for stream, (pos, head) in sent.heads.items():
            cur.execute("SELECT hash FROM events WHERE stream = %s AND pos = %s", (stream, pos))
            row = cur.fetchone()
            found.append(row is not None and row[0] == head)
        if not found and sent.wide:
            at, _, kind, payload, _ = sent.wide[0]
            cur.execute(
                "SELECT count(*) FROM (SELECT at, kind, payload FROM events WHERE stream = %s"
                " ORDER BY pos DESC LIMIT %s) AS latest"
                " WHERE at = %s AND kind = %s AND payload = %s",
                (JOURNAL_WIDE, WINDOW, at, kind, payload),
            )
            row = cur.fetchone()
            found.append(bool(row and row[0]))
    if found and all(found):
        return True
    return None if any(found) else False
