"""kill -9 of the PostgreSQL server itself while a writing step is in flight.

The server of this module is its own (the suite's shared one cannot be
killed). After recovery the server hands out again the transaction ids it had
given after its last WAL flush, so the step's id can belong to another,
committed transaction: resume must decide by the step's marker row, which
exists if and only if the step committed.

It runs with either journal; the PostgreSQL journal is a database of the
suite's shared server (`journal_dsn`), so it survives the target's server dying,
as a team's journal elsewhere would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from runbook.pg import embedded, marker

from .conftest import Project

pytestmark = [pytest.mark.slow]

SLEEPING = (
    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(CASE%' "
    "AND state = 'active' AND pid <> pg_backend_pid())"
)
SLOW = "SELECT pg_sleep(CASE WHEN (SELECT count(*) FROM control) = 0 THEN 60 ELSE 0 END)"
PLAYBOOKS = {
    # A writing step on its own.
    "alone": f"""name: server-crash
kind: change
steps:
  - {{name: Before, sql: "INSERT INTO effects VALUES ('before')"}}
  - {{name: Slow write, sql: "INSERT INTO effects VALUES ('slow'); {SLOW}"}}
  - {{name: After, sql: "INSERT INTO effects VALUES ('after')"}}
""",
    # A transaction block: one marker for the block.
    "block": f"""name: server-crash
kind: change
steps:
  - {{name: Before, sql: "INSERT INTO effects VALUES ('before')"}}
  - name: Block
    transaction:
      - {{name: In block, sql: "INSERT INTO effects VALUES ('block')"}}
      - {{name: Slow write, sql: "INSERT INTO effects VALUES ('slow'); {SLOW}"}}
  - {{name: After, sql: "INSERT INTO effects VALUES ('after')"}}
""",
    # The undo: the first rollback step committed, the second in flight.
    "undo": f"""name: server-crash
kind: change
on_failure: rollback
steps:
  - name: Before
    sql: "INSERT INTO effects VALUES ('before')"
    rollback:
      - {{name: Undo one, sql: "INSERT INTO effects VALUES ('undo-1')"}}
      - {{name: Undo two, sql: "INSERT INTO effects VALUES ('undo-2'); {SLOW}"}}
  - {{name: Fails, query: SELECT 1, gate: {{that: "result.scalar == 2"}}}}
  - {{name: After, sql: "INSERT INTO effects VALUES ('after')"}}
""",
}
EXPECTED = {
    "alone": ["after", "before", "slow"],
    "block": ["after", "before", "block", "slow"],
    "undo": ["before", "undo-1", "undo-2"],
}
MARKERS = {"alone": 3, "block": 3, "undo": 3}  # one per committed writing step or block


def _postgres_pids(pgdata: Path) -> list[int]:
    """The postmaster and every backend of the server in `pgdata`."""
    import psutil

    server = embedded.running(pgdata)
    assert server is not None
    parent = psutil.Process(server.pid)
    return [server.pid, *(child.pid for child in parent.children(recursive=True))]


def _wait_for(dsn: str, query: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with psycopg.connect(dsn, autocommit=True) as conn:
            if conn.execute(query).fetchone() == (True,):
                return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {query}")


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Path]:
    pgdata = tmp_path / "pg"
    embedded.start(pgdata)
    try:
        yield pgdata
    finally:
        embedded.stop(pgdata)


@pytest.mark.parametrize("where", ["alone", "block", "undo"])
def test_resume_after_the_server_was_killed_runs_the_step_once(
    own_server: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
    journal_dsn: str | None,
) -> None:
    server = embedded.start(own_server)
    embedded.ensure_database(server, "crashme")
    dsn = server.database_dsn("crashme")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE effects (what text NOT NULL)")
        conn.execute("CREATE TABLE control (go int)")
        conn.execute("CHECKPOINT")  # what follows is only in WAL the crash may lose
    if journal_dsn is None:
        monkeypatch.delenv("RUNBOOK_JOURNAL", raising=False)
    root = tmp_path / "project"
    project = Project(root, dsn, journal_dsn)
    project.write("inventory.yaml", f"targets:\n  db: {{dsn: {dsn!r}}}\ndefault_target: db\n")
    book = project.playbook(PLAYBOOKS[where])
    monkeypatch.setenv("RUNBOOK_OPERATOR", "tester")
    proc = subprocess.Popen(
        [sys.executable, "-m", "runbook", "run", str(book)],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    _wait_for(dsn, SLEEPING)
    for pid in _postgres_pids(own_server):  # the whole server, as a power cut would
        with contextlib.suppress(ProcessLookupError):  # a child gone with its postmaster
            os.kill(pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode in (1, 3), out.decode()  # undo: the gate's halt, undo cut off

    # The server comes back (a dead postmaster's stale pid file is no obstacle)
    # and hands out transaction ids again, some of them the lost step's.
    server = embedded.start(own_server)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(50):
            conn.execute("SELECT txid_current()")
        conn.execute("INSERT INTO control VALUES (1)")
        lost = [r[0] for r in conn.execute("SELECT what FROM effects").fetchall()]
    assert "slow" not in lost and "undo-2" not in lost  # the crash took it back

    crashed = json.loads(project.run("history", "--format", "json").stdout)[0]
    first = project.run("resume", crashed["id"])
    assert first.exit_code in (0, 1), first.output
    assert "Traceback" not in first.output
    again = project.run("resume", crashed["id"])
    assert again.exit_code == 2
    assert "continued by run" in again.output
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = sorted(r[0] for r in conn.execute("SELECT what FROM effects").fetchall())
        assert rows == EXPECTED[where]  # each step exactly once
        markers = conn.execute("SELECT count(*) FROM runbook.applied").fetchone()
        assert markers == (MARKERS[where],)
    assert project.journal().verify() == []
    if journal_dsn is not None:  # the run and both resumes kept to the PostgreSQL journal
        assert not (root / ".runbook" / "journal.sqlite").exists()


def test_a_marker_probe_tells_committed_aborted_and_in_flight_apart(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        assert marker.probe(conn, "0" * 32) is marker.Fate.NOT_COMMITTED  # no table yet
        assert marker.ensure(conn)
        with conn.transaction():
            marker.insert(conn, "1" * 32, "r", "1 committed")
        with conn.transaction(force_rollback=True):
            marker.insert(conn, "2" * 32, "r", "2 rolled back")
        assert marker.probe(conn, "1" * 32) is marker.Fate.COMMITTED
        assert marker.probe(conn, "2" * 32) is marker.Fate.NOT_COMMITTED
        with psycopg.connect(db, autocommit=True) as other:
            other.execute("BEGIN")
            marker.insert(other, "3" * 32, "r", "3 still open")
            assert marker.probe(conn, "3" * 32) is marker.Fate.IN_PROGRESS
            other.execute("COMMIT")
        assert marker.probe(conn, "3" * 32) is marker.Fate.COMMITTED
        # The probe leaves nothing behind.
        assert conn.execute("SELECT count(*) FROM runbook.applied").fetchone() == (2,)


def test_a_role_that_cannot_create_the_marker_schema_still_runs(db: str, pg_server: object) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS rb_nocreate")
        conn.execute("CREATE ROLE rb_nocreate LOGIN")
        conn.execute("REVOKE CREATE ON DATABASE " + conn.info.dbname + " FROM PUBLIC")
        try:
            with psycopg.connect(db, user="rb_nocreate", autocommit=True) as weak:
                assert marker.ensure(weak) is False
        finally:
            conn.execute("DROP ROLE rb_nocreate")
