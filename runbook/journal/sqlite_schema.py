"""The journal's tables, and the migrations that bring an older journal up to date.

Each journal records its `schema_version` in `meta`; opening one applies the
migrations after it, in one transaction (`set_up`). A migration is only
ever added, never changed: journals written by every earlier version must open.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from runbook.errors import JournalError

SCHEMA_VERSION = 9

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE IF NOT EXISTS runs (
        id TEXT PRIMARY KEY,
        playbook TEXT NOT NULL,
        playbook_path TEXT,
        playbook_sha256 TEXT,
        operator TEXT,
        host TEXT,
        pid INTEGER,
        pid_started REAL,
        mode TEXT NOT NULL,
        target TEXT,
        target_dsn TEXT,
        vars TEXT,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        status TEXT NOT NULL,
        exit_code INTEGER,
        severity TEXT,
        reason TEXT,
        parent_run TEXT,
        counts TEXT
    );
    CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at);
    CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        run_id TEXT,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS events_run ON events (run_id, seq);
    """,
    2: """
    CREATE TABLE IF NOT EXISTS incidents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        playbook TEXT,
        gate TEXT,
        target TEXT,
        policy TEXT,
        severity TEXT NOT NULL,
        status TEXT NOT NULL,
        title TEXT,
        message TEXT,
        opened_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        acknowledged_at TEXT,
        acknowledged_by TEXT,
        resolved_at TEXT,
        resolved_by TEXT,
        resolution TEXT,
        occurrences INTEGER NOT NULL DEFAULT 1,
        last_run TEXT,
        level INTEGER NOT NULL DEFAULT 0,
        next_at TEXT,
        repeats INTEGER NOT NULL DEFAULT 0
    );
    CREATE UNIQUE INDEX IF NOT EXISTS incidents_open_key ON incidents (key) WHERE status != 'resolved';
    CREATE TABLE IF NOT EXISTS deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id INTEGER,
        run_id TEXT,
        channel TEXT NOT NULL,
        event TEXT NOT NULL,
        level INTEGER,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        dedupe TEXT UNIQUE
    );
    CREATE TABLE IF NOT EXISTS attempts (
        delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
        attempt INTEGER NOT NULL,
        at TEXT NOT NULL,
        ok INTEGER NOT NULL,
        detail TEXT,
        PRIMARY KEY (delivery_id, attempt)
    );
    """,
    3: """
    ALTER TABLE runs ADD COLUMN extra TEXT;
    ALTER TABLE runs ADD COLUMN selection TEXT;
    ALTER TABLE runs ADD COLUMN forced TEXT
    """,
    # The run a resume or a rollback continues: unique, so that a run is
    # continued once however many operators try at once (the second insert of
    # a run record fails, before any of its steps runs).
    4: """
    ALTER TABLE runs ADD COLUMN continues TEXT;
    CREATE UNIQUE INDEX IF NOT EXISTS runs_continues ON runs (continues)
    """,
    # Who let a run on a protected target (or an emergency) start: `consent`
    # on the run; standing authorizations for runs nobody attends.
    5: """
    ALTER TABLE runs ADD COLUMN consent TEXT;
    CREATE TABLE IF NOT EXISTS authorizations (
        id TEXT PRIMARY KEY,
        playbook TEXT NOT NULL,
        playbook_path TEXT NOT NULL,
        digest TEXT NOT NULL,
        target TEXT NOT NULL,
        granted_by TEXT NOT NULL,
        granted_at TEXT NOT NULL,
        reason TEXT,
        revoked_by TEXT,
        revoked_at TEXT,
        revoke_reason TEXT
    );
    CREATE INDEX IF NOT EXISTS authorizations_of ON authorizations (playbook, target)
    """,
    # The scheduler (runbook.schedule): its fire ledger and pauses, mirrored
    # from events like every table; a fire's id is its slot's identity, so of
    # two schedulers inserting it one gets a Conflict. Heartbeats are liveness,
    # not history: upserted in place, outside the chain (and not verified).
    6: """
    CREATE TABLE IF NOT EXISTS fires (
        id TEXT PRIMARY KEY,
        playbook TEXT NOT NULL,
        playbook_path TEXT NOT NULL,
        schedule TEXT NOT NULL,
        target TEXT NOT NULL,
        slot TEXT NOT NULL,
        slot_last TEXT,
        count INTEGER NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        late REAL,
        run_id TEXT,
        scheduler TEXT,
        claimed_at TEXT NOT NULL,
        ended_at TEXT,
        run_status TEXT
    );
    CREATE INDEX IF NOT EXISTS fires_slot ON fires (playbook_path, schedule, target, slot);
    CREATE INDEX IF NOT EXISTS fires_status ON fires (status);
    CREATE TABLE IF NOT EXISTS pauses (
        id TEXT PRIMARY KEY,
        playbook TEXT NOT NULL,
        playbook_path TEXT NOT NULL,
        target TEXT NOT NULL,
        paused INTEGER NOT NULL,
        by TEXT NOT NULL,
        at TEXT NOT NULL,
        reason TEXT
    );
    CREATE INDEX IF NOT EXISTS pauses_of ON pauses (playbook_path);
    CREATE TABLE IF NOT EXISTS heartbeats (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at TEXT NOT NULL,
        last_tick TEXT NOT NULL,
        stopped_at TEXT,
        note TEXT
    )
    """,
    # Drills (runbook.drill): the drill, and its findings, actions and sign-offs.
    7: """
    CREATE TABLE IF NOT EXISTS drills (
        id TEXT PRIMARY KEY,
        playbook TEXT NOT NULL,
        playbook_path TEXT NOT NULL,
        exercise TEXT NOT NULL,
        target TEXT NOT NULL,
        copy_db TEXT NOT NULL,
        copy_method TEXT NOT NULL,
        operator TEXT NOT NULL,
        os_user TEXT NOT NULL,
        host TEXT NOT NULL,
        participants TEXT,
        started_at TEXT NOT NULL,
        inject_at TEXT,
        ended_at TEXT,
        status TEXT NOT NULL,
        run_ids TEXT,
        objective_results TEXT,
        rpo_s REAL,
        kept INTEGER NOT NULL,
        reason TEXT
    );
    CREATE INDEX IF NOT EXISTS drills_of ON drills (playbook_path, started_at);
    CREATE TABLE IF NOT EXISTS drill_notes (
        id TEXT PRIMARY KEY,
        drill_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        owner TEXT,
        due TEXT,
        by TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS drill_notes_of ON drill_notes (drill_id, at)
    """,
    # Approvals (runbook.approval): requests, bound to a digest, and the votes on them.
    8: """
    CREATE TABLE IF NOT EXISTS approvals (
        id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        playbook TEXT NOT NULL,
        target TEXT,
        digest TEXT NOT NULL,
        quorum INTEGER NOT NULL,
        approvers TEXT,
        forbid_self INTEGER NOT NULL,
        requested_by TEXT NOT NULL,
        requested_os_user TEXT NOT NULL,
        requested_at TEXT NOT NULL,
        status TEXT NOT NULL,
        decided_at TEXT,
        reason TEXT
    );
    CREATE INDEX IF NOT EXISTS approvals_of ON approvals (run_id);
    CREATE INDEX IF NOT EXISTS approvals_status ON approvals (status);
    CREATE TABLE IF NOT EXISTS approval_votes (
        id TEXT PRIMARY KEY,
        approval_id TEXT NOT NULL,
        by TEXT NOT NULL,
        at TEXT NOT NULL,
        decision TEXT NOT NULL,
        comment TEXT,
        principal TEXT,
        signature TEXT
    );
    CREATE INDEX IF NOT EXISTS approval_votes_of ON approval_votes (approval_id)
    """,
    # A drill's process (a killed drill is reconciled), a step-level approval's step.
    9: """
    ALTER TABLE drills ADD COLUMN pid INTEGER;
    ALTER TABLE drills ADD COLUMN pid_started REAL;
    ALTER TABLE approvals ADD COLUMN step TEXT
    """,
}

# The mirrored tables (runbook.journal.events.TABLES) a later version added, and
# which: a journal of an earlier version, not yet opened by this runbook (so not
# yet migrated), lacks them without anything being wrong (runbook.journal.verify).
TABLES_SINCE = {
    "authorizations": 5,
    "fires": 6,
    "pauses": 6,
    "drills": 7,
    "drill_notes": 7,
    "approvals": 8,
    "approval_votes": 8,
}


def set_up(db: sqlite3.Connection, path: Path) -> None:
    """WAL mode and the schema. Two processes (or threads) opening a new
    journal at once: switching to WAL can answer "database is locked" at
    once, without waiting; it is tried again for as long as a write would wait."""
    deadline = time.monotonic() + 30.0
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a killed process loses nothing; only a
            # power cut can lose the last transactions.
            db.execute("PRAGMA synchronous=NORMAL")
            _migrate(db, path)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _version(db: sqlite3.Connection, path: Path) -> int:
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError:  # no meta table: a new journal
        return 0
    version = int(row[0]) if row else 0
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"journal {path} has schema version {version}; this runbook knows {SCHEMA_VERSION}; upgrade runbook"
        )
    return version


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    # The usual case, a journal already up to date, takes no write lock:
    # `history` and `show` do not wait for a run's writes, and a run's
    # start-up writes nothing it does not need to.
    if _version(db, path) == SCHEMA_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        version = _version(db, path)  # again, under the lock: another process may have migrated
        for number in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[number].split(";"):
                if statement.strip():
                    db.execute(statement)
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
