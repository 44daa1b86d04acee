"""The database session: timeouts, cancel, application_name, reachability."""

from __future__ import annotations

import psycopg
import pytest

from ..conftest import Project

Conn = psycopg.Connection[tuple[object, ...]]


def test_application_name_and_lock_timeout(project: Project) -> None:
    book = project.playbook(
        """name: app-name
kind: check
steps:
  - name: Who am I
    query: SELECT application_name, current_setting('lock_timeout') AS lt FROM pg_stat_activity WHERE pid = pg_backend_pid()
    register: me
    gate: {that: "me.first.application_name == 'runbook/app-name/' ~ run.id and me.first.lt == '5s'"}
"""
    )
    result = project.run("run", str(book))
    assert result.exit_code == 0, result.output


def test_statement_timeout_on_the_server(project: Project) -> None:
    book = project.playbook(
        "name: slow\nkind: check\nsteps:\n  - name: Slow\n    query: SELECT pg_sleep(5)\n    timeout: 0.3\n  - name: Next\n    query: SELECT 1\n"
    )
    result = project.run("run", str(book))
    assert result.exit_code == 3
    step = project.last_run()["steps"][0]
    assert step["error"] == "timed out after 0.3s (statement_timeout)"
    assert step["sqlstate"] == "57014"


def test_client_cancels_when_the_server_does_not(project: Project) -> None:
    # The statement turns the server's timeout off; the client-side watchdog still cancels it.
    book = project.playbook(
        "name: stuck\nkind: change\nsteps:\n  - name: Stuck\n    sql: SET statement_timeout = 0; SELECT pg_sleep(30)\n    timeout: 0.2\n"
    )
    result = project.run("run", str(book))
    assert result.exit_code == 3
    assert (
        project.last_run()["steps"][0]["error"]
        == "cancelled by runbook after 0.2s: no answer from the server"
    )


def test_timeout_does_not_leak_to_the_next_step(project: Project) -> None:
    book = project.playbook(
        """name: t
kind: check
timeout: 1m
steps:
  - {name: Short, query: SELECT 1, timeout: 0.5}
  - name: Default again
    query: SELECT current_setting('statement_timeout') AS st
    register: st
    gate: {that: st.scalar == '1min'}
"""
    )
    assert project.run("run", str(book)).exit_code == 0


def test_unreachable_target_fails_fast_naming_it_without_password(project: Project) -> None:
    project.write(
        "inventory.yaml",
        "targets:\n  far:\n    dsn: postgresql://app:hunter2-very-secret@127.0.0.1:1/app\n    connect_timeout: 2s\n",
    )
    book = project.playbook(
        "name: u\nkind: check\nsteps:\n  - name: Anything\n    query: SELECT 1\n"
    )
    result = project.run("run", str(book), "-t", "far")
    assert result.exit_code == 3
    assert "cannot connect to target 'far' (postgresql://app:***@127.0.0.1:1/app)" in result.stdout
    assert "hunter2-very-secret" not in result.output
    journal = (project.root / ".runbook" / "journal.sqlite").read_bytes()
    assert b"hunter2-very-secret" not in journal


def test_invalid_input_connects_to_nothing(project: Project) -> None:
    project.write(
        "inventory.yaml", "targets:\n  far:\n    dsn: postgresql://nobody@127.0.0.1:1/app\n"
    )
    book = project.playbook(
        "name: u\nkind: check\nsteps:\n  - name: Typo\n    query: SELECT {{ nope }}\n"
    )
    result = project.run("run", str(book))
    assert result.exit_code == 2
    assert result.stderr.startswith("playbooks/p.yaml:5:12: $.steps[0].query: 'nope' is undefined")
    assert not (project.root / ".runbook" / "journal.sqlite").exists()


def test_unknown_target_and_missing_env(project: Project) -> None:
    book = project.playbook("name: u\nkind: check\nsteps:\n  - name: One\n    query: SELECT 1\n")
    result = project.run("run", str(book), "-t", "nowhere")
    assert result.exit_code == 2 and "unknown target or group 'nowhere'" in result.stderr
    project.write(
        "inventory.yaml", "targets:\n  prod:\n    dsn: {from_env: RUNBOOK_TEST_MISSING_DSN}\n"
    )
    result = project.run("run", str(book), "-t", "prod")
    assert result.exit_code == 2
    assert (
        "target 'prod' dsn: environment variable RUNBOOK_TEST_MISSING_DSN is not set"
        in result.stderr
    )


def test_statements_run_as_rendered_with_native_placeholders(db: str) -> None:
    """The server is sent the $1 spelling: percent signs, a literal holding %,
    and values that look like placeholders all arrive as written."""
    from runbook.pg.db import ConnectSpec, Session
    from runbook.sqltemplate import template

    session = Session(ConnectSpec("t", db, "runbook/test/raw"))
    try:
        conn = session.connect()
        cases = [
            (
                "SELECT {{ v }}::text AS v, '100%' AS pct, 'a%b' LIKE '%b' AS hit",
                {"v": "$1 %s %%"},
                [{"v": "$1 %s %%", "pct": "100%", "hit": True}],
            ),
            (
                "SELECT {{ v | literal }}::text AS v, {{ n }}::int AS n",
                {"v": "50% off, $2", "n": 3},
                [{"v": "50% off, $2", "n": 3}],
            ),
            (
                "CREATE TEMP TABLE raw_t (x text); INSERT INTO raw_t VALUES ({{ v }});"
                " SELECT x, x LIKE '%\\%%' AS pct FROM raw_t WHERE x = {{ v }}",
                {"v": "10%"},
                [{"x": "10%", "pct": True}],
            ),
            ("SELECT '%' AS p; SELECT '$1' AS d", {}, [{"d": "$1"}]),
        ]
        for source, values, rows in cases:
            statements = template.render_sql(source, values, conn)
            assert session.execute(statements).rows == rows, source
    finally:
        session.close()


def test_the_sessions_of_a_process_share_one_watchdog_thread(db: str) -> None:
    import threading

    from runbook.pg.db import ConnectSpec, Session

    sessions = [Session(ConnectSpec(target="t", dsn=db, application_name="w")) for _ in range(5)]
    try:
        for session in sessions:
            session.connect()
            session._watchdog.arm(session.conn, 60.0)  # type: ignore[arg-type]
        dogs = [t for t in threading.enumerate() if t.name == "runbook-watchdog"]
        assert len(dogs) == 1
    finally:
        for session in sessions:
            session.close()


def test_the_client_check_is_asked_for_when_connecting(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """client_connection_check_interval comes with the connection (no SET of
    its own: a round trip a target); a server that does not know the setting
    (before PostgreSQL 14) is connected to again without it."""
    from runbook.pg import db as pgdb
    from runbook.pg.db import ConnectSpec, Session

    session = Session(ConnectSpec(target="t", dsn=db, application_name="check"))
    try:
        row = session.connect().execute("SHOW client_connection_check_interval").fetchone()
        assert row == ("1s",)
    finally:
        session.close()

    # As an older server answers: the setting it does not know is refused at
    # connect time, in the same FATAL message.
    unknown = "runbook_no_such_setting"
    monkeypatch.setattr(pgdb, "CHECK_CLIENT_NAME", unknown)
    monkeypatch.setattr(pgdb, "CHECK_CLIENT", f" -c {unknown}=1s")
    session = Session(ConnectSpec(target="t", dsn=db, application_name="check", read_only=True))
    try:
        conn = session.connect()
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        assert conn.execute("SHOW client_connection_check_interval").fetchone() == ("0",)
    finally:
        session.close()


def test_a_refusal_met_ahead_is_raised_by_the_next_connect_as_if_met_there() -> None:
    """connect_ahead (a run connecting while its start is written) never
    raises: the session looks untried until a step connects, which raises the
    same refusal without a second attempt; a later connect tries again."""
    from runbook.errors import TargetError
    from runbook.pg.db import ConnectSpec, Session

    session = Session(ConnectSpec("gone", "host=/nonexistent dbname=x", "ahead"))
    session.connect_ahead()
    assert session.conn is None and not session.unreachable and session.refused is None
    with pytest.raises(TargetError) as first:
        session.connect()
    assert session.unreachable and session.refused is not None
    assert "cannot connect to target 'gone'" in str(first.value)
    with pytest.raises(TargetError) as again:
        session.connect()
    assert again.value is not first.value  # tried again, as any connect after a refusal


def test_a_run_start_is_in_the_journal_before_its_first_statement(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run connects while its start is being written, and its first
    statement finds the start committed: the journal here is a schema of the
    target's own database, which the first step reads."""
    monkeypatch.setenv("RUNBOOK_JOURNAL", project.dsn)
    book = project.playbook(
        "name: seen\nkind: check\nsteps:\n"
        "  - name: My own start\n"
        "    query: SELECT count(*) AS n FROM runbook.runs WHERE id = {{ run.id }}"
        " AND status = 'running'\n"
        "    register: mine\n"
        "    gate: {that: mine.scalar == 1, severity: CRITICAL}\n"
    )
    for _ in range(3):
        result = project.run("run", str(book))
        assert result.exit_code == 0, result.output


def test_a_session_whose_statement_met_a_dead_socket_is_lost(db: str) -> None:
    """libpq may fail a send on a dead socket before it marks the connection
    bad: the statement's error says the connection is gone, and the session
    is lost (the run halts, "the target cannot be reached"), not merely failed."""
    import os
    import socket

    from runbook.pg.db import ConnectSpec, Session
    from runbook.sqltemplate.sqlvalues import RenderedSql

    session = Session(ConnectSpec(target="t", dsn=db, application_name="cut"))
    try:
        conn = session.connect()
        assert not session.lost
        with socket.socket() as nowhere:  # connected nowhere
            os.dup2(nowhere.fileno(), conn.fileno())
        with pytest.raises(psycopg.OperationalError):
            session.execute([RenderedSql("SELECT 1", None, "SELECT 1")])
        assert not conn.broken  # libpq has not said so
        assert session.lost
    finally:
        session.close()
