"""Ctrl-C: the running statement is cancelled on the server and the journal says so."""

from __future__ import annotations

import signal
import time

import psycopg
import pytest

from .conftest import Project

pytestmark = pytest.mark.slow


def _wait_for(
    conn: psycopg.Connection[tuple[object, ...]], query: str, seconds: float = 20
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if conn.execute(query).fetchone() == (True,):
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {query}")


def test_ctrl_c_cancels_on_the_server_and_exits_130(project: Project) -> None:
    book = project.playbook(
        "name: long\nkind: check\nsteps:\n  - name: Long report\n    query: SELECT pg_sleep(60)\n  - name: After\n    query: SELECT 1\n"
    )
    proc = project.start("run", str(book))
    with psycopg.connect(project.dsn, autocommit=True) as watcher:
        active = "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = 'active' AND datname = current_database())"
        _wait_for(watcher, active)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, out + err
        _wait_for(watcher, active.replace("SELECT EXISTS", "SELECT NOT EXISTS"), 5)
    run = project.last_run()
    assert run["status"] == "interrupted" and run["exit_code"] == 130
    assert [s["status"] for s in run["steps"]] == ["failed", "not_run"]
    assert run["steps"][0]["error"].startswith("interrupted by the operator")


def test_ctrl_c_during_the_undo_exits_130_and_resume_finishes_the_undo_once(
    project: Project,
) -> None:
    with psycopg.connect(project.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE effects (what text); CREATE TABLE undo_log (what text)")
        conn.execute("CREATE TABLE control (go int)")
    book = project.playbook(
        "name: undoint\nkind: change\non_failure: rollback\nsteps:\n"
        "  - name: S1\n    sql: \"INSERT INTO effects VALUES ('s1')\"\n    rollback:\n"
        "      - {name: U1a, sql: \"INSERT INTO undo_log VALUES ('u1a')\"}\n"
        "      - {name: U1b, sql: \"INSERT INTO undo_log VALUES ('u1b'); SELECT pg_sleep(CASE"
        ' WHEN (SELECT count(*) FROM control) = 0 THEN 60 ELSE 0 END)"}\n'
        "  - name: S2\n    sql: \"INSERT INTO effects VALUES ('s2')\"\n    rollback:\n"
        "      - {name: U2, sql: \"INSERT INTO undo_log VALUES ('u2')\"}\n"
        "  - {name: Fails, query: SELECT 1 AS n, gate: {that: 'result.scalar == 2'}}\n"
    )
    proc = project.start("run", str(book), "--yes")
    with psycopg.connect(project.dsn, autocommit=True) as watcher:
        active = (
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(CASE%'"
            " AND state = 'active' AND datname = current_database() AND pid <> pg_backend_pid())"
        )
        _wait_for(watcher, active)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, out + err
        assert "Traceback" not in out + err
        _wait_for(watcher, active.replace("SELECT EXISTS", "SELECT NOT EXISTS"), 5)
    run = project.last_run()
    assert run["status"] == "interrupted" and run["exit_code"] == 130
    assert "rollback interrupted (Ctrl-C) while undoing step 1" in run["reason"]
    with psycopg.connect(project.dsn, autocommit=True) as conn:
        # U2 and U1a ran; U1b was cancelled with its transaction.
        logged = [r[0] for r in conn.execute("SELECT what FROM undo_log ORDER BY what")]
        assert logged == ["u1a", "u2"]
        conn.execute("INSERT INTO control VALUES (1)")
        resumed = project.run("resume", run["id"], "--yes")
        assert resumed.exit_code == 1 and "ROLLED_BACK" in resumed.output, resumed.output
        logged = [r[0] for r in conn.execute("SELECT what FROM undo_log ORDER BY what")]
        assert logged == ["u1a", "u1b", "u2"]  # the undo finished, each step once
