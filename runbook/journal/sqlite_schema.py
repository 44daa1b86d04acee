"""The journal's tables, and the migrations that bring an older journal up to date.

Each journal records its `schema_version` in `meta`; opening one applies the
migrations after it, in one transaction (runbook.journal.sqlite). A migration is only
ever added, never changed: journals written by every earlier version must open.
"""

from __future__ import annotations

SCHEMA_VERSION = 5

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
}
