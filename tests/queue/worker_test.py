"""Runs queued in the journal's PostgreSQL database and taken by real
`runbook worker` processes on loopback: each run exactly once; a worker
killed with -9 mid-run has its run taken over without repeating a committed
step. Heartbeats are shortened through the environment; nothing here waits
on a wall-clock threshold except for a deadline to fail by."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from tests.conftest import PgServer, Project

pytestmark = [
    pytest.mark.parametrize("journal_backend", ["postgresql"]),
    pytest.mark.timeout(180),
]

FAST = {"RUNBOOK_WORKER_HEARTBEAT": "0.5", "RUNBOOK_WORKER_STALLED_AFTER": "3"}

CHECK = """name: quick
kind: check
steps:
  - name: look
    query: SELECT pg_sleep(0.02) IS NOT NULL AS ok
    register: r
    gate: {that: r.first.ok}
"""


def wait_for(what: Callable[[], bool], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError("not in time")
        time.sleep(0.2)


@pytest.fixture
def workers(project: Project) -> Iterator[Callable[[int], list[subprocess.Popen[bytes]]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(count: int, concurrency: int = 2) -> list[subprocess.Popen[bytes]]:
        for _ in range(count):
            started.append(
                subprocess.Popen(
                    [sys.executable, "-m", "runbook", "worker", "--concurrency", str(concurrency)],
                    cwd=project.root,
                    env={**os.environ, **FAST},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
            )
        return started[-count:]

    try:
        yield start
    finally:
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def queued(project: Project, *args: str) -> list[str]:
    result = project.run("run", *args, "--queue")
    assert result.exit_code == 0, result.output
    return [
        line.split("run ")[1].split()[0]
        for line in result.output.splitlines()
        if " queued " in line
    ]


def test_three_workers_take_fifty_queued_runs_each_exactly_once(
    project: Project, pg_server: PgServer, workers: Callable[..., Any]
) -> None:
    names = [pg_server.create_database() for _ in range(4)]
    try:
        targets = "".join(
            f"  t{i}: {{dsn: {pg_server.dsn_for(n)!r}}}\n" for i, n in enumerate(names)
        )
        project.write(
            "inventory.yaml",
            f"targets:\n  db: {{dsn: {project.dsn!r}}}\n{targets}"
            "groups:\n  five: [db, t0, t1, t2, t3]\n",
        )
        project.playbook(CHECK, "quick.yaml")
        ids = []
        for _ in range(10):
            ids += queued(project, "playbooks/quick.yaml", "-t", "five")
        assert len(ids) == 50 and len(set(ids)) == 50
        listed = json.loads(project.run("queue", "--format", "json").output)
        assert len(listed) == 50 and {r["status"] for r in listed} == {"queued"}
        workers(3)
        wait_for(lambda: len([r for r in project.runs() if r["status"] == "ok"]) >= 50)
        wait_for(lambda: json.loads(project.run("queue", "--format", "json").output) == [])
        runs = project.runs()
        assert sorted(r["id"] for r in runs) == sorted(ids)  # each queued run, once
        assert all(r["status"] == "ok" for r in runs)
        by = {(r["selection"] or {}).get("queued", {}).get("worker") for r in runs}
        assert len(by) >= 2, by  # shared out, and each run names its worker
        assert all(r["pid"] and r["host"] for r in runs)
    finally:
        for name in names:
            pg_server.drop_database(name)


WRITING = """name: mark
kind: change
on_worker_loss: resume
steps:
  - name: first
    sql: INSERT INTO marks (step) VALUES ('first')
  - name: long
    sql: SELECT pg_sleep(CASE WHEN EXISTS (SELECT FROM hold) THEN 120 ELSE 0 END)
  - name: last
    sql: INSERT INTO marks (step) VALUES ('last')
"""


def test_a_worker_killed_mid_run_is_taken_over_without_repeating_a_committed_step(
    project: Project, workers: Callable[..., Any]
) -> None:
    make_marks(project)
    project.playbook(WRITING, "mark.yaml")
    [run_id] = queued(project, "playbooks/mark.yaml", "--yes")
    [first] = workers(1)

    def sleeping() -> bool:
        with psycopg.connect(project.dsn) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(CASE%%'"
                " AND wait_event = 'PgSleep'"
            ).fetchone()
        return bool(row and row[0])

    wait_for(sleeping)
    first.kill()  # kill -9: no goodbye, no journal entry
    first.wait()
    # The long step is left to its server, which cancels it once it sees the
    # client gone; the next worker's reaper sees the silence and takes over.
    with psycopg.connect(project.dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM hold")
    [second] = workers(1)

    def resumed() -> bool:
        return any(r.get("continues") == run_id and r["status"] == "ok" for r in project.runs())

    try:
        wait_for(resumed)
    except AssertionError:
        second.send_signal(signal.SIGTERM)
        raise AssertionError(second.communicate(timeout=30)[1].decode()) from None
    runs = {r["id"]: r for r in project.runs()}
    assert runs[run_id]["status"] == "interrupted"
    assert "stopped sending heartbeats" in runs[run_id]["reason"]
    with psycopg.connect(project.dsn) as conn:
        marks = [r[0] for r in conn.execute("SELECT step FROM marks ORDER BY at").fetchall()]
    assert marks == ["first", "last"]  # the committed first step was not run again


def test_two_schedulers_queue_the_same_fire_and_it_runs_once(
    project: Project, workers: Callable[..., Any]
) -> None:
    text = (project.root / "inventory.yaml").read_text()
    project.write("inventory.yaml", text + "scheduler: {dispatch: queue}\n")
    project.playbook(
        'name: daily\nkind: check\nschedule: "0 6 * * *"\n'
        "steps:\n  - {name: look, query: SELECT 1 AS one}\n",
        "daily.yaml",
    )
    workers(1)
    ticks = [
        subprocess.Popen(
            [sys.executable, "-m", "runbook", "scheduler", "tick", "--now", "2026-12-04T06:00:10Z"],
            cwd=project.root,
            env={**os.environ, **FAST},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    said = [t.communicate(timeout=120)[0].decode() for t in ticks]
    assert all(t.returncode == 0 for t in ticks), said
    runs = project.runs()
    assert len(runs) == 1, (runs, said)  # one fire, one run, though two schedulers saw the slot
    assert runs[0]["status"] == "ok" and runs[0]["mode"] == "scheduled"
    assert runs[0]["selection"]["queued"]["worker"]
    fires = json.loads(project.run("history", "--fires", "--format", "json").output)
    assert [f["status"] for f in fires if f["run_id"]] == ["started"], fires


def test_sigterm_interrupts_the_running_run_journals_it_and_the_worker_leaves(
    project: Project, workers: Callable[..., Any]
) -> None:
    project.playbook(
        "name: long\nkind: check\nsteps:\n  - {name: wait, query: SELECT pg_sleep(60)}\n",
        "long.yaml",
    )
    [run_id] = queued(project, "playbooks/long.yaml")
    [worker] = workers(1)
    wait_for(lambda: any(r["id"] == run_id for r in project.runs()))
    time.sleep(0.5)  # in its statement
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    [run] = project.runs()
    assert run["status"] == "interrupted", run
    assert json.loads(project.run("queue", "--format", "json").output) == []


def test_journal_upgrade_makes_the_queue_tables(project: Project) -> None:
    assert project.run("journal", "upgrade").exit_code == 0
    assert project.journal_dsn is not None
    with psycopg.connect(project.journal_dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'runbook_queue'"
            " AND tablename = 'procrastinate_jobs'"
        ).fetchone()
    assert row == (1,)
    assert project.run("queue").exit_code == 0


def test_a_writing_run_whose_worker_died_halts_for_a_person_by_default(
    project: Project, workers: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNBOOK_WORKER_STALLED_AFTER", FAST["RUNBOOK_WORKER_STALLED_AFTER"])
    make_marks(project)
    project.playbook(WRITING.replace("on_worker_loss: resume\n", ""), "mark.yaml")
    [run_id] = queued(project, "playbooks/mark.yaml", "--yes")
    [first] = workers(1)
    wait_for(lambda: any(r["id"] == run_id for r in project.runs()) and len(marks(project)) == 1)
    first.kill()
    first.wait()

    def stuck() -> bool:
        listed = json.loads(project.run("queue", "--format", "json").output)
        return [(r["status"], r["run_id"]) for r in listed] == [("stuck", run_id)]

    wait_for(stuck)  # its worker is silent: `runbook queue` says so before anyone takes over
    workers(1)
    wait_for(lambda: project.runs()[0]["status"] == "interrupted")
    time.sleep(3)  # a few of the reaper's rounds: nothing is resumed
    runs = project.runs()
    assert len(runs) == 1 and "stopped sending heartbeats" in runs[0]["reason"]
    assert marks(project) == ["first"]
    shown = project.run("show", run_id)
    assert "queued: job" in shown.output and "run by worker" in shown.output
    listed = project.run("history").output
    assert run_id in listed and "worker " in listed


def make_marks(project: Project) -> None:
    """`marks`, written by the steps; `hold`, which keeps the long step going while it has a row."""
    with psycopg.connect(project.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE marks (step text, at timestamptz DEFAULT clock_timestamp())")
        conn.execute("CREATE TABLE hold (); INSERT INTO hold DEFAULT VALUES")


def marks(project: Project) -> list[str]:
    with psycopg.connect(project.dsn) as conn:
        return [r[0] for r in conn.execute("SELECT step FROM marks ORDER BY at").fetchall()]
