"""Resuming a looped step at its iteration: a kill -9 in the middle of a loop
(a transactional iteration: its marker decides; an autocommit one: unknown),
and a loop whose items changed since (refused, or --force, recorded)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import fields
from typing import Any

import psycopg
import pytest

from runbook.journal.events import STEP_COLUMNS
from runbook.journal.records import RunRecord, StepRecord
from runbook.outcome import Status

from .conftest import Project, needs_orphan_cancel
from .crash_test import SLEEPING, wait_for

pytestmark = pytest.mark.slow
Conn = psycopg.Connection[tuple[object, ...]]

# Iteration 'c' sleeps until `control` has a row; the others return at once.
LOOPED = """name: each
kind: change
steps:
  - name: Before
    sql: INSERT INTO effects VALUES ('before')
  - name: Each
    sql: >
      INSERT INTO effects SELECT {{ item }}::text
      FROM pg_sleep(CASE WHEN {{ item }}::text = 'c'
                    AND (SELECT count(*) FROM control) = 0 THEN 60 ELSE 0 END)
    loop: [a, b, c, d]
    {AUTOCOMMIT}
  - name: After
    sql: INSERT INTO effects VALUES ('after')
"""


def _kill_in_iteration_c(project: Project, conn: Conn, autocommit: bool) -> dict[str, Any]:
    conn.execute("CREATE TABLE effects (what text NOT NULL)")
    conn.execute("CREATE TABLE control (go int)")
    book = project.playbook(
        LOOPED.replace("{AUTOCOMMIT}", "autocommit: true" if autocommit else "")
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
    if autocommit:
        # Nothing waits on the server's side: the statement goes on until cancelled.
        conn.execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE "
            "'%pg_sleep(CASE%' AND pid <> pg_backend_pid() AND datname = current_database()"
        )
    wait_for(conn, SLEEPING.replace("SELECT EXISTS", "SELECT NOT EXISTS"))
    history = json.loads(project.run("history", "--format", "json").stdout)
    crashed: dict[str, Any] = history[0]
    assert crashed["status"] == "interrupted"
    shown = project.run("show", crashed["id"]).stdout
    assert "during step 2[2]" in shown
    conn.execute("INSERT INTO control VALUES (1)")
    return crashed


def _effects(conn: Conn) -> list[str]:
    return sorted(str(r[0]) for r in conn.execute("SELECT what FROM effects").fetchall())


def test_kill_mid_loop_then_resume_does_not_repeat_committed_iterations(
    project: Project, conn: Conn
) -> None:
    needs_orphan_cancel(project.dsn)  # the resume waits for the server to end the orphan
    crashed = _kill_in_iteration_c(project, conn, autocommit=False)
    assert _effects(conn) == ["a", "b", "before"]  # 'c' never committed
    result = project.run("resume", crashed["id"])
    assert result.exit_code == 0, result.output
    assert "2[0]  Each  [skipped] item='a'" in result.output
    assert "2[2]  Each  [ok" in result.output
    assert _effects(conn) == ["a", "after", "b", "before", "c", "d"]  # each exactly once
    # The target was asked about iteration 'c' (its marker), not guessed at.
    caught = next(s for s in project.runs()[0]["steps"] if s["number"] == "2[2]")
    assert "its transaction never committed (no marker)" in caught["reason"]
    assert project.journal().verify() == []


def test_kill_mid_loop_in_an_autocommit_iteration_is_unknown_not_guessed(
    project: Project, conn: Conn
) -> None:
    crashed = _kill_in_iteration_c(project, conn, autocommit=True)
    halted = project.run("resume", crashed["id"])
    assert halted.exit_code == 3, halted.output
    assert "step 2[2] 'Each'" in halted.output and "is unknown" in halted.output
    # The operator looked: 'c' did not take effect; run it again, and the rest.
    result = project.run("resume", crashed["id"], "--unknown", "rerun")
    assert result.exit_code == 0, result.output
    assert _effects(conn) == ["a", "after", "b", "before", "c", "d"]
    decided = [s for s in project.runs()[0]["steps"] if s["number"] == "2[2]"]
    assert decided[-1]["status"] == "unknown" and decided[-1]["decision"] == "rerun"


CHANGING = """name: each-changing
kind: change
vars:
  tenants: [a, b, c]
steps:
  - name: Each
    sql: INSERT INTO effects VALUES ({{ item }})
    loop: "{{ tenants }}"
"""


def test_resume_refuses_a_loop_whose_items_changed_unless_forced(
    project: Project, conn: Conn
) -> None:
    conn.execute("CREATE TABLE effects (what text NOT NULL CONSTRAINT no_b CHECK (what <> 'b'))")
    project.playbook(CHANGING)
    failed = project.run("run", "playbooks/p.yaml")
    assert failed.exit_code == 3, failed.output
    assert _effects(conn) == ["a"]
    conn.execute("ALTER TABLE effects DROP CONSTRAINT no_b")
    changed = '{"tenants": ["a", "x", "b"]}'
    refused = project.run("resume", project.last_run()["id"], "-e", changed)
    assert refused.exit_code == 3, refused.output
    assert "the items are not those run" in refused.output
    assert 'item 1 was "b", is "x"' in refused.output
    assert _effects(conn) == ["a"]
    forced = project.run("resume", project.last_run()["id"], "--force", "-e", changed)
    assert forced.exit_code == 0, forced.output
    assert _effects(conn) == ["a", "b", "x"]  # 'a' was done: not again
    steps = project.last_run()["steps"]
    summary = next(s for s in steps if s["number"] == "1")
    assert summary["status"] == "ok"
    assert summary["loop_changed"] == 'item 1 was "b", is "x"'
    assert "--force" in summary["note"]


def test_an_iteration_whose_marker_committed_is_done_not_repeated() -> None:
    # A crash between an iteration's COMMIT and its record: the marker row
    # says it committed, so resume counts it done.
    from runbook.commands import earlier as earlier_mod
    from runbook.pg.marker import Fate

    class Target:
        def step_fate(self, marker: str) -> Fate:
            return Fate.COMMITTED if marker == "m2" else Fate.NOT_COMMITTED

    class Journal:
        def __init__(self) -> None:
            self.changes: list[tuple[Any, ...]] = []

        def steps_updated(self, changes: Any, kind: str, run_id: str | None = None) -> None:
            self.changes.append((kind, run_id, changes))

    def record(k: int) -> StepRecord:
        row = {
            **dict.fromkeys(STEP_COLUMNS), "phase": "main", "idx": 1, "iteration": k,
            "item": f"t{k}", "number": f"2[{k}]", "name": "Each", "seq": 3 + k,
            "status": "failed", "marker": f"m{k}", "run_id": "r1", "reason": "interrupted",
        }  # fmt: skip
        return StepRecord.from_row(row)

    row = {
        **{f.name: None for f in fields(RunRecord)}, "id": "r1", "playbook": "p",
        "mode": "run", "started_at": "2026-11-23T08:00:00Z", "status": "interrupted",
    }  # fmt: skip
    run = RunRecord.from_row(row)
    found = earlier_mod.Earlier(run)
    for k in (2, 3):
        step = record(k)
        assert step.iteration == k
        earlier_mod._fold_iteration(found, step, (1, k))
    assert set(found.iter_in_flight) == {(1, 2), (1, 3)}
    journal = Journal()
    earlier_mod.settle(found, Target(), journal, "db")  # type: ignore[arg-type]
    assert set(found.iter_done) == {(1, 2)}
    assert found.iter_done[(1, 2)].status is Status.OK and found.iter_done[(1, 2)].item == "t2"
    assert not found.iter_in_flight
    assert [kind for kind, _, _ in journal.changes] == ["step.committed", "step.not_committed"]


UNDO = """name: loop-undo-crash
kind: change
on_failure: rollback
steps:
  - name: Add
    sql: INSERT INTO effects VALUES ({{ item }})
    loop: [a, b, c]
    rollback:
      - name: Undo one
        sql: INSERT INTO undo_log VALUES ({{ item }}::text || '-r1')
      - name: Undo two (slow for b)
        sql: >
          INSERT INTO undo_log SELECT {{ item }}::text || '-r2'
          FROM pg_sleep(CASE WHEN {{ item }}::text = 'b'
                        AND (SELECT count(*) FROM control) = 0 THEN 60 ELSE 0 END)
  - name: Gate that fails
    query: SELECT 1 AS n
    gate: {that: "result.scalar == 2"}
"""


@pytest.mark.parametrize("how", ["resume", "rollback"])
def test_an_undo_of_a_loop_killed_half_way_is_continued_never_repeated(
    project: Project, conn: Conn, how: str
) -> None:
    needs_orphan_cancel(project.dsn)
    conn.execute("CREATE TABLE effects (what text NOT NULL)")
    conn.execute("CREATE TABLE undo_log (n serial, what text NOT NULL)")
    conn.execute("CREATE TABLE control (go int)")
    book = project.playbook(UNDO.replace("INSERT INTO undo_log ", "INSERT INTO undo_log (what) "))
    proc = subprocess.Popen(
        [sys.executable, "-m", "runbook", "run", str(book)],
        cwd=project.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "RUNBOOK_OPERATOR": "tester"},
    )
    wait_for(conn, SLEEPING)  # c undone; b's first undo step committed, its second in flight
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    wait_for(conn, SLEEPING.replace("SELECT EXISTS", "SELECT NOT EXISTS"))
    conn.execute("INSERT INTO control VALUES (1)")
    run_id = json.loads(project.run("history", "--format", "json").stdout)[0]["id"]
    args = ("resume", run_id) if how == "resume" else ("rollback", run_id, "--yes")
    result = project.run(*args)
    assert result.exit_code in (0, 1), result.output
    undone = [str(r[0]) for r in conn.execute("SELECT what FROM undo_log ORDER BY n")]
    assert undone == ["c-r1", "c-r2", "b-r1", "b-r2", "a-r1", "a-r2"]  # each once, newest first
    assert project.journal().verify() == []
