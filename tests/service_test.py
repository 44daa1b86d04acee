"""The run service: a RunSpec is plain data, and two runs on two threads at
once, sharing one journal, each get their own outcome and nothing is lost."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from pathlib import Path

import psycopg
import pytest

from runbook import report, service
from runbook.errors import UsageError
from runbook.outcome import RunOutcome

from .conftest import PgServer, Project


def test_a_run_spec_is_plain_data_and_comes_back_the_same() -> None:
    spec = service.RunSpec(
        playbook=Path("playbooks/p.yaml"),
        inventory=Path("inventory.yaml"),
        targets=("a", "b"),
        extra=("n=1", '{"x": [1, 2]}'),
        tags=frozenset({"daily", "quick"}),
        check=True,
        mode="resume",
        continues="abc123",
    )
    text = json.dumps(spec.to_dict())
    assert service.RunSpec.from_dict(json.loads(text)) == spec
    with pytest.raises(UsageError, match="unknown field"):
        service.RunSpec.from_dict({"playbook": "p.yaml", "resume": {}})


def test_two_playbooks_on_two_threads_against_one_journal(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(project.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE hits (who text, n int)")
    for name in ("a", "b"):
        steps = "".join(
            f"  - name: {name} {i}\n    sql: INSERT INTO hits VALUES ('{name}', {i})\n"
            f"  - name: {name} check {i}\n    query: SELECT count(*) AS n FROM hits WHERE who = '{name}'\n"
            f"    register: c{i}\n    gate: {{that: c{i}.scalar == {i + 1}}}\n"
            for i in range(25)
        )
        project.playbook(f"name: {name}\nkind: change\nsteps:\n{steps}", f"{name}.yaml")
    monkeypatch.chdir(project.root)
    outcomes: dict[str, list[RunOutcome]] = {}
    outputs: dict[str, io.StringIO] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        outputs[name] = io.StringIO()
        try:
            outcomes[name] = service.run(
                service.RunSpec(playbook=project.root / "playbooks" / f"{name}.yaml"),
                lambda: report.PlainReporter(outputs[name]),
            )
        except BaseException as exc:  # shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    for name in ("a", "b"):
        (outcome,) = outcomes[name]
        assert outcome.exit_code == 0, outputs[name].getvalue()
        assert f"run {outcome.run_id}: {name} (change)" in outputs[name].getvalue()
        other = "b" if name == "a" else "a"
        assert f"{other} 0" not in outputs[name].getvalue()
    runs = {r["id"]: r for r in project.runs()}
    assert {runs[o.run_id]["playbook"] for (o,) in outcomes.values()} == {"a", "b"}
    for (outcome,) in outcomes.values():
        steps = runs[outcome.run_id]["steps"]
        assert len(steps) == 50 and all(s["status"] == "ok" for s in steps)
    with psycopg.connect(project.dsn) as conn:
        assert conn.execute(
            "SELECT who, count(*) FROM hits GROUP BY who ORDER BY who"
        ).fetchall() == [
            ("a", 25),
            ("b", 25),
        ]
    assert os.getcwd() == str(project.root)


@pytest.mark.parametrize("how", ["run_on", "rehearse"])
def test_a_ctrl_c_before_the_first_step_is_journaled_as_the_runs_interruption(
    project: Project, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    # Ctrl-C while the run connects: the first statement outside a step (run_on's
    # question to a writing playbook's server, or a rehearsal's BEGIN) raised
    # it past the engine, and the run was left without an end in the journal.
    from runbook.fleet.fanout import Sessions
    from runbook.outcome import RunStatus, Status

    with psycopg.connect(project.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (n int)")
    book = project.playbook(
        "name: w\nkind: change\nsteps:\n  - name: write\n    sql: INSERT INTO t VALUES (1)\n"
        "  - name: look\n    query: SELECT count(*) AS n FROM t\n",
        "w.yaml",
    )
    monkeypatch.chdir(project.root)
    ctrl_c = Sessions()
    ctrl_c.interrupt()  # each session is interrupted as it is handed over
    (outcome,) = service.run(
        service.RunSpec(playbook=book, rehearse=how == "rehearse"),
        report.SilentReporter,
        interrupts=ctrl_c,
    )
    assert outcome.status is RunStatus.INTERRUPTED
    assert outcome.reason == "interrupted (Ctrl-C) before its first step"
    assert [s.status for s in outcome.steps] == [Status.NOT_RUN, Status.NOT_RUN]
    run = project.last_run()
    assert run["status"] == "interrupted" and run["ended_at"]
    assert [s["status"] for s in run["steps"]] == ["not_run", "not_run"]
    with psycopg.connect(project.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_a_real_ctrl_c_while_connecting_to_a_silent_server_ends_the_run_interrupted(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server that accepts the connection and never answers: the operator
    # presses Ctrl-C while runbook waits for it (SIGINT, to this process).
    import signal
    import socket

    from runbook.outcome import RunStatus

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    port = silent.getsockname()[1]
    project.write(
        "inventory.yaml",
        "targets:\n  slow:\n"
        f"    dsn: 'host=127.0.0.1 port={port} dbname=x user=x'\n"
        "    connect_timeout: 30\n"
        "default_target: slow\n",
    )
    book = project.playbook("name: w\nkind: change\nsteps:\n  - name: write\n    sql: SELECT 1\n")
    monkeypatch.chdir(project.root)
    accepted: list[socket.socket] = []

    def press_ctrl_c() -> None:
        # Only once runbook is connecting (its connection accepted, its
        # start-up message unanswered): never while the test does anything else.
        silent.settimeout(60)
        accepted.append(silent.accept()[0])
        os.kill(os.getpid(), signal.SIGINT)

    operator = threading.Thread(target=press_ctrl_c, daemon=True)
    operator.start()
    try:
        (outcome,) = service.run(service.RunSpec(playbook=book), report.SilentReporter)
    finally:
        operator.join(timeout=60)
        for conn in accepted:
            conn.close()
        silent.close()
    assert accepted  # the Ctrl-C came while connecting
    assert outcome.status is RunStatus.INTERRUPTED, outcome.reason
    assert outcome.reason == "interrupted (Ctrl-C) before its first step"
    run = project.last_run()
    assert run["status"] == "interrupted" and run["ended_at"]


def test_a_ctrl_c_while_the_runs_start_is_being_written_ends_the_run_interrupted(
    project: Project, pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A PostgreSQL journal held up (another session locks its events): the
    # run waits for its start to be written, and the operator presses Ctrl-C.
    import signal

    from runbook.journal.store import StoreConfig, open_store
    from runbook.outcome import RunStatus

    name = pg_server.create_database()
    url = pg_server.dsn_for(name)
    monkeypatch.setenv("RUNBOOK_JOURNAL", url)
    open_store(StoreConfig("postgresql", dsn=url)).close()  # its tables made
    # The first step needs no connection: the run waits for its start first.
    book = project.playbook(
        "name: c\nkind: check\nsteps:\n  - name: say\n    shell: [echo, hi]\n    writes: false\n"
        "  - name: look\n    query: SELECT 1 AS n\n"
    )
    monkeypatch.chdir(project.root)
    blocker = psycopg.connect(url)
    blocker.execute("LOCK TABLE runbook.events IN EXCLUSIVE MODE")
    pressed: list[bool] = []

    def press_ctrl_c_then_let_go() -> None:
        with psycopg.connect(url, autocommit=True) as watch:
            for _ in range(600):  # the journal's writer waiting on the lock: the run on its start
                row = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                ).fetchone()
                if row and row[0]:
                    break
                time.sleep(0.05)
            else:
                return
        os.kill(os.getpid(), signal.SIGINT)
        pressed.append(True)
        time.sleep(0.5)
        blocker.rollback()  # the start, and then the end, are written

    operator = threading.Thread(target=press_ctrl_c_then_let_go, daemon=True)
    operator.start()
    try:
        (outcome,) = service.run(service.RunSpec(playbook=book), report.SilentReporter)
        operator.join(timeout=60)
        journal = open_store(StoreConfig("postgresql", dsn=url))
        try:
            run = journal.run(outcome.run_id)
        finally:
            journal.close()
    finally:
        blocker.close()
        pg_server.drop_database(name)
    assert pressed
    assert outcome.status is RunStatus.INTERRUPTED, outcome.reason
    assert outcome.reason == "interrupted (Ctrl-C) before its first step"
    assert run is not None and run.status is RunStatus.INTERRUPTED and run.ended_at
    assert [s.status.value for s in run.steps] == ["not_run", "not_run"]
