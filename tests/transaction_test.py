"""transaction: blocks, --rehearse, and lock timeouts with retries."""

from __future__ import annotations

import threading

import psycopg

from .conftest import Project

Conn = psycopg.Connection[tuple[object, ...]]

BLOCK = """name: block
kind: change
steps:
  - name: Before the block
    sql: INSERT INTO effects VALUES ('before')
  - name: All or nothing
    transaction:
      - {name: Create a table, sql: CREATE TABLE made_in_block (x int)}
      - {name: First insert, sql: "INSERT INTO effects VALUES ('a')"}
      - name: Second insert fails
        sql: INSERT INTO effects VALUES (NULL)
      - {name: Third insert, sql: "INSERT INTO effects VALUES ('c')"}
  - name: After the block
    sql: INSERT INTO effects VALUES ('after')
"""


def test_failing_block_leaves_no_trace(project: Project, conn: Conn) -> None:
    conn.execute("CREATE TABLE effects (what text NOT NULL)")
    result = project.run("run", str(project.playbook(BLOCK)))
    assert result.exit_code == 3, result.output
    assert conn.execute("SELECT what FROM effects").fetchall() == [("before",)]
    assert conn.execute("SELECT to_regclass('made_in_block')").fetchone() == (
        None,
    )  # DDL undone too
    steps = [(s["number"], s["status"]) for s in project.last_run()["steps"]]
    assert steps == [
        ("1", "ok"),
        ("2", "failed"),
        ("2.1", "rolled_back"),
        ("2.2", "rolled_back"),
        ("2.3", "failed"),
        ("2.4", "not_run"),
        ("3", "not_run"),
    ]


def test_block_commits_when_all_pass(project: Project, conn: Conn) -> None:
    conn.execute("CREATE TABLE effects (what text NOT NULL)")
    book = project.playbook(BLOCK.replace("VALUES (NULL)", "VALUES ('b')"))
    assert project.run("run", str(book)).exit_code == 0
    assert [r[0] for r in conn.execute("SELECT what FROM effects").fetchall()] == [
        "before",
        "a",
        "b",
        "c",
        "after",
    ]
    assert all(s["status"] == "ok" for s in project.last_run()["steps"])
    assert project.last_run()["steps"][1]["xid"]  # the block's transaction id is on record


def test_continue_inside_a_block_rolls_back_only_that_step(project: Project, conn: Conn) -> None:
    conn.execute("CREATE TABLE effects (what text NOT NULL)")
    book = project.playbook(
        BLOCK.replace("VALUES (NULL)", "VALUES (NULL)\n        on_failure: continue")
    )
    assert project.run("run", str(book)).exit_code == 3
    assert [r[0] for r in conn.execute("SELECT what FROM effects").fetchall()] == [
        "before",
        "a",
        "c",
        "after",
    ]


def test_rehearsal_changes_nothing(project: Project, conn: Conn) -> None:
    conn.execute("CREATE TABLE effects (what text NOT NULL)")
    conn.execute("CREATE TABLE t (x int)")
    book = project.playbook(
        """name: rehearse
kind: emergency
steps:
  - {name: Write, sql: "INSERT INTO effects VALUES ('rehearsed')"}
  - {name: DDL, sql: ALTER TABLE t ADD COLUMN y int}
  - name: The write is visible inside the rehearsal
    query: SELECT count(*) AS n FROM effects
    register: n
    gate: {that: n.scalar == 1}
  - {name: Vacuum, sql: VACUUM t, autocommit: true}
  - {name: Ask, confirm: Is production stopped?}
  - {name: Dump, shell: [pg_dump, --version]}
  - name: Block
    transaction:
      - {name: In block, sql: "INSERT INTO effects VALUES ('block')"}
"""
    )
    result = project.run("run", str(book), "--rehearse")
    assert result.exit_code == 0, result.output
    assert conn.execute("SELECT count(*) FROM effects").fetchone() == (0,)
    assert conn.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 't'"
    ).fetchone() == (1,)
    run = project.last_run()
    assert run["mode"] == "rehearse"
    status = {s["name"]: (s["status"], s["reason"]) for s in run["steps"]}
    assert status["Write"][0] == "ok" and status["DDL"][0] == "ok"
    assert status["Vacuum"] == (
        "skipped",
        "not rehearsed: an autocommit step cannot run inside the rehearsal's transaction",
    )
    assert status["Ask"] == ("skipped", "rehearsal: shown, not run")
    assert status["Dump"] == ("skipped", "rehearsal: shown, not run")


def test_rehearsal_shows_a_gate_failing(project: Project, conn: Conn) -> None:
    conn.execute("CREATE TABLE effects (what text NOT NULL)")
    book = project.playbook(
        "name: r\nkind: change\nsteps:\n  - {name: Write, sql: \"INSERT INTO effects VALUES ('x')\"}\n"
        "  - {name: Gate, gate: {that: '1 == 2', message: would halt here}}\n"
    )
    result = project.run("run", str(book), "--rehearse")
    assert result.exit_code == 1 and "would halt here" in result.stdout
    assert conn.execute("SELECT count(*) FROM effects").fetchone() == (0,)


def test_lock_timeout_retried_with_backoff(project: Project, conn: Conn, db: str) -> None:
    conn.execute("CREATE TABLE busy (x int)")
    holder = psycopg.connect(db)
    holder.execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
    release = threading.Timer(0.6, holder.rollback)
    release.start()
    book = project.playbook(
        """name: locks
kind: change
steps:
  - name: Add a column while someone holds the table
    sql: ALTER TABLE busy ADD COLUMN y int
    lock_timeout: 0.2
    retries: 10
    delay: 0.1
    backoff: 1.5
"""
    )
    result = project.run("run", str(book))
    release.join()
    holder.close()
    assert result.exit_code == 0, result.output
    step = project.last_run()["steps"][0]
    assert step["attempts"] >= 2
    assert all(h["sqlstate"] == "55P03" for h in step["history"])
    assert "lock_timeout" in step["history"][0]["error"]
    assert conn.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'busy'"
    ).fetchone() == (2,)


def test_lock_timeout_without_retries_fails(project: Project, conn: Conn, db: str) -> None:
    conn.execute("CREATE TABLE busy (x int)")
    with psycopg.connect(db) as holder:
        holder.execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
        book = project.playbook(
            "name: l\nkind: change\nsteps:\n  - name: Blocked\n    sql: ALTER TABLE busy ADD COLUMN y int\n    lock_timeout: 0.1\n"
        )
        result = project.run("run", str(book))
        holder.rollback()
    assert result.exit_code == 3
    step = project.last_run()["steps"][0]
    assert step["sqlstate"] == "55P03" and "another session holds the lock" in step["error"]
