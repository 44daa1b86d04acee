"""Exactly once, whatever dies: the undo, a second resume, a step outside any transaction.

Real subprocesses killed with SIGKILL, a real server; the slow statements and
commands wait only while `control` is empty (or a file is absent).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from runbook.outcome import Status

from .conftest import Project, needs_orphan_cancel
from .crash_test import SLEEP as WAIT
from .crash_test import SLEEPING

pytestmark = pytest.mark.slow
Conn = psycopg.Connection[tuple[object, ...]]


def _wait_for(check: Any, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _sleeping(conn: Conn) -> bool:
    return conn.execute(SLEEPING).fetchone() == (True,)


def _start(project: Project, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "runbook", *args],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "RUNBOOK_OPERATOR": "tester"},
    )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _last_run_id(project: Project) -> str:
    return str(json.loads(project.run("history", "--format", "json").stdout)[0]["id"])


def _rows(conn: Conn, table: str) -> list[str]:
    return sorted(str(r[0]) for r in conn.execute(f"SELECT what FROM {table}").fetchall())


# -- an undo killed half way ---------------------------------------------------

UNDO = f"""name: undo-crash
kind: change
on_failure: rollback
steps:
  - name: Change
    sql: INSERT INTO effects VALUES ('change')
    rollback:
      - name: Undo one
        sql: INSERT INTO undo_log VALUES ('r1')
      - name: Undo two (slow)
        sql: "INSERT INTO undo_log VALUES ('r2'); {WAIT}"
  - name: Gate that fails
    query: SELECT 1 AS n
    gate: {{that: "result.scalar == 2", severity: CRITICAL}}
  - name: Never
    sql: INSERT INTO effects VALUES ('never')
"""


@pytest.mark.parametrize("how", ["resume", "rollback"])
def test_an_undo_killed_half_way_is_continued_never_repeated(
    project: Project, conn: Conn, how: str
) -> None:
    needs_orphan_cancel(project.dsn)  # waits for the server to end the orphaned undo
    for table in ("effects", "undo_log"):
        conn.execute(f"CREATE TABLE {table} (what text NOT NULL)")
    conn.execute("CREATE TABLE control (go int)")
    book = project.playbook(UNDO)
    proc = _start(project, "run", str(book))
    _wait_for(lambda: _sleeping(conn), "the second undo step")
    _kill(proc)  # the first undo step committed; the second is in flight
    _wait_for(lambda: not _sleeping(conn), "the server to cancel the orphan")
    conn.execute("INSERT INTO control VALUES (1)")
    run_id = _last_run_id(project)
    args = ("resume", run_id) if how == "resume" else ("rollback", run_id, "--yes")
    result = project.run(*args)
    assert result.exit_code in (0, 1), result.output  # resume: the gate's failure, undone
    assert _rows(conn, "undo_log") == ["r1", "r2"]  # each undo step exactly once
    assert _rows(conn, "effects") == ["change"]  # the forward run did not go on
    shown = project.run("show", run_id).stdout
    assert "rolled_back" in shown
    again = project.run(*args)
    assert again.exit_code == 2  # a run is continued once
    assert _rows(conn, "undo_log") == ["r1", "r2"]
    assert project.journal().verify() == []


# -- one resume only -----------------------------------------------------------

FAILS_ONCE = """name: fails-once
kind: change
steps:
  - name: First
    sql: INSERT INTO effects VALUES ('first')
  - name: Needs control
    sql: "INSERT INTO effects SELECT 'second' FROM control WHERE 1 / (SELECT count(*) FROM control) = 1"
  - name: Third
    sql: INSERT INTO effects VALUES ('third')
"""


def test_two_resumes_at_once_run_the_rest_once(project: Project, conn: Conn) -> None:
    conn.execute("CREATE TABLE effects (what text NOT NULL)")
    conn.execute("CREATE TABLE control (go int)")
    book = project.playbook(FAILS_ONCE)
    assert project.run("run", str(book)).exit_code == 3  # division by zero
    run_id = _last_run_id(project)
    conn.execute("INSERT INTO control VALUES (1)")
    procs = [_start(project, "resume", run_id) for _ in range(3)]
    results = [(p.wait(timeout=60), p.stdout.read().decode() if p.stdout else "") for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2, 2], results
    refused = [out for code, out in results if code == 2]
    assert all("continued by" in out or "being continued" in out for out in refused), refused
    assert _rows(conn, "effects") == ["first", "second", "third"]
    later = project.run("resume", run_id)
    assert later.exit_code == 2 and "continued by run" in later.output
    assert _rows(conn, "effects") == ["first", "second", "third"]


def test_a_run_that_was_resumed_is_rolled_back_through_its_resume(
    project: Project, conn: Conn
) -> None:
    conn.execute("CREATE TABLE effects (what text NOT NULL)")
    conn.execute("CREATE TABLE control (go int)")
    book = project.playbook(
        FAILS_ONCE.replace(
            "    sql: INSERT INTO effects VALUES ('first')",
            "    sql: INSERT INTO effects VALUES ('first')\n"
            "    rollback: [{name: Undo first, sql: \"DELETE FROM effects WHERE what = 'first'\"}]",
        )
    )
    project.run("run", str(book))
    first = _last_run_id(project)
    conn.execute("INSERT INTO control VALUES (1)")
    assert project.run("resume", first).exit_code == 0
    resumed = _last_run_id(project)
    refused = project.run("rollback", first, "--yes")
    assert refused.exit_code == 2 and resumed in refused.output
    assert project.run("rollback", resumed, "--yes").exit_code == 0
    assert _rows(conn, "effects") == ["second", "third"]


# -- steps that cannot be transactional ----------------------------------------

SHELL = """name: outside
kind: change
steps:
  - name: Append a line, then wait
    shell:
      command: "echo line >> {out}; while [ ! -e {go} ]; do sleep 0.05; done"
{policy}
  - name: After
    sql: INSERT INTO effects VALUES ('after')
"""


def _crash_in_shell(project: Project, conn: Conn, policy: str = "") -> tuple[str, Path, Path]:
    conn.execute("CREATE TABLE effects (what text NOT NULL)")
    out, go = project.root / "out.txt", project.root / "go"
    book = project.playbook(SHELL.format(out=out, go=go, policy=policy))
    proc = _start(project, "run", str(book))
    _wait_for(out.exists, "the command's first line")
    _kill(proc)
    go.write_text("")
    return _last_run_id(project), out, go


def test_a_command_caught_mid_flight_is_unknown_and_resume_halts(
    project: Project, conn: Conn
) -> None:
    run_id, out, _ = _crash_in_shell(project, conn)
    caught = project.journal().steps(run_id)[0]  # history marked the dead run
    assert caught.status is Status.UNKNOWN and "outcome unknown" in (caught.reason or "")
    halted = project.run("resume", run_id)
    assert halted.exit_code == 3, halted.output
    assert "unknown" in halted.output and "--unknown" in halted.output
    assert out.read_text() == "line\n"  # not run again behind the operator's back
    assert _rows(conn, "effects") == []
    assert "Traceback" not in halted.output


@pytest.mark.parametrize(("choice", "lines"), [("skip", 1), ("rerun", 2)])
def test_the_operator_decides_an_unknown_step(
    project: Project, conn: Conn, choice: str, lines: int
) -> None:
    run_id, out, _ = _crash_in_shell(project, conn)
    result = project.run("resume", run_id, "--unknown", choice)
    assert result.exit_code == 0, result.output
    assert out.read_text().count("line") == lines
    assert _rows(conn, "effects") == ["after"]
    decided = [s for s in project.journal().steps(run_id) if s.decision]
    assert decided and decided[0].decision == choice and "tester" in (decided[0].decided or "")


def test_on_unknown_in_the_playbook_decides_without_a_person(project: Project, conn: Conn) -> None:
    run_id, out, _ = _crash_in_shell(project, conn, policy="    on_unknown: rerun")
    result = project.run("resume", run_id)
    assert result.exit_code == 0, result.output
    assert out.read_text() == "line\nline\n"


def test_an_autocommit_step_cut_off_from_its_server_is_unknown(
    project: Project, conn: Conn, pg_server: Any
) -> None:
    conn.execute("CREATE TABLE effects (what text NOT NULL)")
    conn.execute("CREATE TABLE control (go int)")
    book = project.playbook(
        "name: ac\nkind: change\nsteps:\n"
        f"  - {{name: Outside a transaction, autocommit: true, sql: \"INSERT INTO effects VALUES ('ac'); {WAIT}\"}}\n"
    )
    proc = _start(project, "run", str(book))
    _wait_for(lambda: _sleeping(conn), "the autocommit step")
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(CASE%'"
        " AND pid <> pg_backend_pid() AND datname = current_database()"
    )
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 3
    assert "outcome unknown" in out.decode()
    steps = project.journal().steps(_last_run_id(project))
    assert steps[0].status is Status.UNKNOWN
    # Its two statements ran one at a time: the first ended (and stays), the second was cut off.
    assert steps[0].statements == {"done": 1, "total": 2}
    assert (steps[0].reason or "").startswith("statement 2 of 2: ")
    assert _rows(conn, "effects") == ["ac"]


def test_a_writing_step_may_not_end_its_own_transaction(project: Project) -> None:
    book = project.playbook(
        "name: tc\nkind: change\nsteps:\n"
        '  - {name: Half, sql: "INSERT INTO t VALUES (1); COMMIT; INSERT INTO t VALUES (2)"}\n'
        '  - {name: Savepoints are fine, sql: "SAVEPOINT s; SELECT 1; ROLLBACK TO SAVEPOINT s"}\n'
        '  - {name: Autocommit may, autocommit: true, sql: "SELECT 1; COMMIT"}\n'
    )
    result = project.run("validate", str(book))
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if "transaction runbook runs" in line]
    assert len(lines) == 1 and ":4:" in lines[0] and "`COMMIT`" in lines[0]
