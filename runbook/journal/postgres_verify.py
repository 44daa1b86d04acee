"""`runbook journal verify` for the PostgreSQL journal: every chain recomputed.

All reads happen in one REPEATABLE READ, READ ONLY transaction: one snapshot,
nothing written. Checked: each chain (every run's own, and the journal-wide
one) as stored and as recomputed, positions without gaps, each seal against
its run's chain (a run's events cut off or rewritten after it ended), runs
that ended without a seal, the chain heads table, the tables replayed from the
events, checkpoints in the journal, and a checkpoint kept elsewhere (which
counts the journal-wide chain).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg

from runbook.errors import JournalError
from runbook.journal import hashing
from runbook.journal.events import TABLES
from runbook.journal.migrate import TABLES_SINCE, connect
from runbook.journal.postgres import SEALS, ends_run
from runbook.journal.postgres_rows import JOURNAL_WIDE
from runbook.journal.verify import Report, Verifier, compare_checkpoint, event_hash, parse_payload
from runbook.pg.lost import connection_lost
from runbook.redact import first_line

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from runbook.journal.checkpoint import Checkpoint
    from runbook.journal.store import StoreConfig

_NEEDED = ("meta", "chains", "events", *TABLES)


def verify_postgres(
    config: StoreConfig,
    checkpoint: Checkpoint | None = None,
    public: Ed25519PublicKey | None = None,
) -> Report:
    """Verify the journal in PostgreSQL without creating or writing anything.
    A server out of reach, or a connection lost on the way, is a JournalError
    (exit 3), not a problem found: a journal that cannot be read is not shown
    damaged (a nightly verify would page "tampered" for a server restarting)."""
    conn = connect(config)
    try:
        return verify_connection(conn, checkpoint, public, where=config.where)
    finally:
        conn.close()


def verify_connection(
    conn: psycopg.Connection[Any],
    checkpoint: Checkpoint | None = None,
    public: Ed25519PublicKey | None = None,
    where: str = "",
) -> Report:
    """The journal on `conn` checked; a connection lost on the way is a
    JournalError, not a problem found."""
    report = Report()
    try:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            _PgVerifier(conn, report, public).check(checkpoint)
        finally:
            conn.execute("ROLLBACK")
    except psycopg.Error as exc:
        if connection_lost(exc, conn):
            raise JournalError(
                f"cannot read the journal {where}: the connection was lost ({first_line(exc)})"
            ) from None
        report.problems.append(f"cannot read the journal: {str(exc).strip()}")
    return report


class _PgVerifier(Verifier):
    since = TABLES_SINCE  # the numbered migrations' versions, not the SQLite journal's

    def __init__(
        self, conn: psycopg.Connection[Any], report: Report, public: Ed25519PublicKey | None
    ) -> None:
        super().__init__(conn, report, public)
        self.chains: dict[str, list[str | None]] = {}  # recomputed hash at each position
        self.sealed: set[str] = set()
        self.last_wide = 0  # the journal-wide chain's last position: what checkpoints count

    def check(self, checkpoint: Checkpoint | None) -> None:
        present = {
            name
            for name in _NEEDED
            if self.db.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None
        }
        if not present:
            self.report.notes.append("the journal is empty: no tables yet")
            compare_checkpoint(self.report, checkpoint, self.public, 0)
            return
        for name in ("meta", "chains", "events"):
            if name not in present:
                self.missing(name)
        if "meta" in present:
            self._meta()  # every event here is hashed with version 2: only its checks count
        last = 0
        if "events" in present:
            last = self._streams(checkpoint.count if checkpoint else 0)
        if "chains" in present and "events" in present:
            self._heads()
        for table in TABLES:
            if table in present:
                self._compare_table(table)
            else:
                self.missing(table)
        self._unsealed()
        if self.public is not None:
            self._signed_coverage(last)
        compare_checkpoint(self.report, checkpoint, self.public, last, self.at_count)

    def _streams(self, wanted: int) -> int:
        """Every chain, the runs' first (seals name them); returns the length
        of the journal-wide chain."""
        cursor = self.db.execute(
            "SELECT stream, pos, at, run_id, kind, payload, prev_hash, hash FROM events"
            " ORDER BY stream = %s, stream, pos",
            (JOURNAL_WIDE,),
        )
        stream, expected = None, 1
        stored_prev: Any = hashing.GENESIS
        recomputed: str | None = hashing.GENESIS
        for name, pos, at, run_id, kind, payload, prev_hash, stored in cursor:
            if name != stream:
                stream, expected = name, 1
                stored_prev = recomputed = hashing.GENESIS
                self.chains[name] = []
            where = _where(name, pos)
            self.report.count += 1
            if pos != expected:
                self.problems.append(f"{where}: events {expected} to {pos - 1} are missing")
            expected = pos + 1
            if prev_hash != stored_prev:
                self.problems.append(f"{where}: chain broken (previous hash does not match)")
            change = parse_payload(payload)
            if change is None:
                self.problems.append(f"{where}: payload is not JSON")
            if event_hash(True, prev_hash, at, run_id, kind, payload, change) != stored:
                self.problems.append(f"{where} ({kind}): content does not match its hash")
            previous = recomputed
            recomputed = event_hash(True, previous, at, run_id, kind, payload, change)
            self.chains[name].append(recomputed)
            stored_prev = stored
            if name == JOURNAL_WIDE:
                self.last_wide = pos
                self.recomputed = recomputed
                if pos == wanted:
                    self.at_count[pos] = recomputed
            if change is not None:
                self._apply(pos, change, previous)
        return self.last_wide

    def _apply(self, seq: int, change: Any, previous: str | None) -> None:
        if isinstance(change, dict) and change.get("table") == SEALS:
            self._seal(seq, change.get("row"))
            return
        super()._apply(seq, change, previous)

    def _seal(self, pos: int, row: Any) -> None:
        where = _where(JOURNAL_WIDE, pos)
        if not (isinstance(row, dict) and isinstance(row.get("length"), int)):
            self.problems.append(f"{where}: a seal that cannot be read")
            return
        run, length, head = row.get("run"), row["length"], row.get("head")
        chain = self.chains.get(str(run), [])
        self.sealed.add(str(run))
        if len(chain) < length:
            self.problems.append(
                f"run {run}: sealed with {length} event(s), {len(chain)} found: its events were removed"
            )
        elif length and chain[length - 1] != head:
            self.problems.append(
                f"run {run}: its events differ from its seal ({where}): changed, removed"
                " or inserted after it ended"
            )

    def _heads(self) -> None:
        for stream, length, head in self.db.execute("SELECT stream, length, head FROM chains"):
            chain = self.chains.get(stream, [])
            if length != len(chain) or (chain and chain[-1] != head and head is not None):
                self.problems.append(
                    f"chain {stream or 'journal-wide'}: its head says {length} event(s),"
                    f" {len(chain)} found (or a different last hash)"
                )

    def _unsealed(self) -> None:
        for (run_id,), run in self.replay["runs"].items():
            if ends_run({"table": "runs", "row": run}) and str(run_id) not in self.sealed:
                self.problems.append(f"run {run_id} ended but its chain was never sealed")


def _where(stream: str, pos: int) -> str:
    return f"run {stream}, event {pos}" if stream else f"journal-wide event {pos}"
