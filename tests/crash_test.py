"""kill -9 in the middle of a step, then `runbook resume`: every step runs exactly once.

A real subprocess, a real SIGKILL, a real server. The slow statement sleeps only
while `control` is empty, so the resumed run goes through.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from .conftest import Project, needs_orphan_cancel

pytestmark = pytest.mark.slow
Conn = psycopg.Connection[tuple[object, ...]]

SLEEP = "SELECT pg_sleep(CASE WHEN (SELECT count(*) FROM control) = 0 THEN 60 ELSE 0 END)"
# In this test's database only: other tests (other workers) sleep too.
SLEEPING = (
    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(CASE%' "
    "AND state = 'active' AND pid <> pg_backend_pid() AND datname = current_database())"
)

PLAYBOOK = """name: crash
kind: change
steps:
  - name: One
    sql: INSERT INTO effects VALUES ('one')
  - name: Block
    transaction:
      - {name: Two a, sql: "INSERT INTO effects VALUES ('two-a')"}
      - name: Two b (slow in the block)
        sql: "INSERT INTO effects VALUES ('two-b'); {SLEEP_IN_BLOCK}"
  - name: Three (slow on its own)
    sql: "INSERT INTO effects VALUES ('three'); {SLEEP_ALONE}"
  - name: Four
    sql: INSERT INTO effects VALUES ('four')
"""


def wait_for(conn: Conn, query: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if conn.execute(query).fetchone() == (True,):
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {query}")


def _crash_and_resume(project: Project, conn: Conn, in_block: bool) -> None:
    needs_orphan_cancel(project.dsn)  # the resume waits for the server to end the orphan
    conn.execute("CREATE TABLE effects (what text NOT NULL)")
    conn.execute("CREATE TABLE control (go int)")
    book = project.playbook(
        PLAYBOOK.replace("{SLEEP_IN_BLOCK}", SLEEP if in_block else "SELECT 1").replace(
            "{SLEEP_ALONE}", "SELECT 1" if in_block else SLEEP
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "runbook", "run", str(book)],
        cwd=project.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "RUNBOOK_OPERATOR": "tester"},
    )
    wait_for(conn, SLEEPING)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    # The server notices the dead client (client_connection_check_interval) and
    # rolls its transaction back.
    wait_for(conn, SLEEPING.replace("SELECT EXISTS", "SELECT NOT EXISTS"))
    history = project.run("history", "--format", "json")
    crashed = __import__("json").loads(history.stdout)[0]
    assert crashed["status"] == "interrupted"
    shown = project.run("show", crashed["id"]).stdout
    where = "2.2" if in_block else "3"
    assert f"during step {where}" in shown
    assert all(
        " ok " not in line for line in shown.splitlines() if line.strip().startswith(where + " ")
    )
    conn.execute("INSERT INTO control VALUES (1)")
    result = project.run("resume", crashed["id"])
    assert result.exit_code == 0, result.output
    rows = [r[0] for r in conn.execute("SELECT what FROM effects ORDER BY what").fetchall()]
    assert rows == ["four", "one", "three", "two-a", "two-b"]  # every step exactly once
    assert project.journal().verify() == []


def test_kill_inside_a_transaction_block_then_resume(project: Project, conn: Conn) -> None:
    _crash_and_resume(project, conn, in_block=True)


def test_kill_in_a_step_outside_a_block_then_resume(project: Project, conn: Conn) -> None:
    _crash_and_resume(project, conn, in_block=False)


def test_read_only_steps_reach_the_journal_while_a_long_query_runs(
    project: Project, conn: Conn
) -> None:
    # Records of read-only steps are written in groups, but by a thread of
    # their own: they do not wait in memory for the next step to begin.
    conn.execute("CREATE TABLE control (go int)")  # stays empty: the query sleeps
    book = project.playbook(
        f"name: slow-check\nkind: check\nsteps:\n  - {{name: Quick, query: SELECT 1}}\n"
        f"  - {{name: Slow, query: '{SLEEP}'}}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "runbook", "run", str(book)],
        cwd=project.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(conn, SLEEPING)
        deadline = time.monotonic() + 30
        statuses: list[str] = []
        while time.monotonic() < deadline and statuses != ["ok", "running"]:
            runs = project.runs()
            statuses = [s["status"] for s in runs[-1]["steps"]] if runs else []
            time.sleep(0.05)
        assert statuses == ["ok", "running"]
        assert proc.poll() is None  # still in the slow query
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_kill_between_two_autocommit_statements_leaves_the_count(
    project: Project, conn: Conn
) -> None:
    # An autocommit step runs its statements one at a time, each committed as it
    # ends, and the journal hears of each: kill -9 in the second leaves the first
    # done and the step unknown, with how far it got.
    needs_orphan_cancel(project.dsn)  # the orphaned sleep ends with its client
    conn.execute("CREATE TABLE effects (what text NOT NULL)")
    conn.execute("CREATE TABLE control (go int)")
    book = project.playbook(
        "name: ac\nkind: change\nsteps:\n"
        "  - name: Three statements\n    autocommit: true\n"
        f"    sql: \"INSERT INTO effects VALUES ('one'); {SLEEP}; INSERT INTO effects VALUES ('three')\"\n"
        "  - {name: After, sql: \"INSERT INTO effects VALUES ('after')\"}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "runbook", "run", str(book)],
        cwd=project.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "RUNBOOK_OPERATOR": "tester"},
    )
    wait_for(conn, SLEEPING)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    conn.execute("INSERT INTO control VALUES (1)")
    history = project.run("history", "--format", "json")  # marks the dead run
    run_id = __import__("json").loads(history.stdout)[0]["id"]
    caught = project.journal().steps(run_id)[0].as_dict()
    assert caught["status"] == "unknown"
    assert caught["statements"] == {"done": 1, "total": 3}  # the journal's progress record
    assert "1 of its 3 statements had ended (committed, they stay done)" in caught["reason"]
    halted = project.run("resume", run_id)
    assert halted.exit_code == 3, halted.output
    assert "1 of its 3 statements had ended" in halted.output
    effects = "SELECT what FROM effects ORDER BY what"
    assert conn.execute(effects).fetchall() == [("one",)]
    skipped = project.run("resume", run_id, "--unknown", "skip")
    assert skipped.exit_code == 0, skipped.output
    assert conn.execute(effects).fetchall() == [("after",), ("one",)]
    assert project.journal().verify() == []
