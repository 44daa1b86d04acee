"""The embedded sandbox: `dsn: embedded` targets and `runbook sandbox`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ..conftest import Project


@pytest.fixture
def sandboxed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    monkeypatch.delenv("RUNBOOK_INVENTORY", raising=False)
    project = Project(tmp_path, "embedded")
    project.write(
        "inventory.yaml", "default_target: sandbox\ntargets:\n  sandbox: {dsn: embedded}\n"
    )
    try:
        yield project
    finally:
        project.run("sandbox", "down")


def test_sandbox_lifecycle_and_runs(sandboxed: Project) -> None:
    status = sandboxed.run("sandbox", "status")
    assert status.exit_code == 3 and "not running" in status.stdout
    book = sandboxed.playbook(
        "name: s\nkind: change\nsteps:\n  - name: Make a table\n    sql: CREATE TABLE IF NOT EXISTS marks (n int); INSERT INTO marks VALUES (1)\n"
        "  - name: Count\n    query: SELECT count(*) AS n FROM marks\n    register: c\n    gate: {that: c.scalar >= 1}\n"
    )
    # `runbook run` starts the sandbox when a run needs it.
    assert sandboxed.run("run", str(book)).exit_code == 0
    status = sandboxed.run("sandbox", "status")
    assert status.exit_code == 0 and "sandbox running" in status.stdout
    dsn = status.stdout.split("dsn: ", 1)[1].strip()
    only = sandboxed.run("sandbox", "status", "--dsn")
    assert only.exit_code == 0 and only.stdout.strip() == dsn  # psql "$(… --dsn)"
    with psycopg.connect(dsn) as conn:  # psql-ready: the printed DSN connects
        assert conn.execute("SELECT count(*) FROM marks").fetchone() == (1,)
    # A second run reuses the running server.
    pid = status.stdout.split("pid ", 1)[1].split(",")[0]
    assert sandboxed.run("run", str(book)).exit_code == 0
    assert f"pid {pid}," in sandboxed.run("sandbox", "up").stdout
    # reset gives a fresh database.
    assert sandboxed.run("sandbox", "reset").exit_code == 0
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT to_regclass('marks')").fetchone() == (None,)
    assert sandboxed.run("sandbox", "down").stdout.strip() == "sandbox stopped"
    assert sandboxed.run("sandbox", "status").exit_code == 3
    gone = sandboxed.run("sandbox", "status", "--dsn")
    assert gone.exit_code == 3 and gone.stdout == ""  # nothing a script would take for a DSN


def test_shell_steps_get_the_sandbox_tools(sandboxed: Project) -> None:
    book = sandboxed.playbook(
        "name: d\nkind: change\nsteps:\n  - name: Dump the schema\n    shell: [pg_dump, --schema-only, -f, dump.sql]\n"
    )
    result = sandboxed.run("run", str(book))
    assert result.exit_code == 0, result.output
    assert "PostgreSQL database dump" in (sandboxed.root / "dump.sql").read_text()


def test_sandbox_up_after_the_server_was_killed(sandboxed: Project) -> None:
    import contextlib
    import os
    import signal
    import subprocess
    import sys

    import psutil

    up = sandboxed.run("sandbox", "up")
    assert up.exit_code == 0, up.output
    pid = int(up.stdout.split("pid ", 1)[1].split(",")[0])
    victims = [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    for victim in victims:  # kill -9, as a power cut or the OOM killer would
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    again = subprocess.run(  # a new process, as an operator's next command is
        [sys.executable, "-m", "runbook", "sandbox", "up"],
        cwd=sandboxed.root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Traceback" not in again.stdout + again.stderr
    status = sandboxed.run("sandbox", "status")
    assert status.exit_code == 0 and f"pid {pid}," not in status.stdout


TRIAL_INVENTORY = """default_target: sandbox
targets:
  sandbox: {dsn: embedded}
  trial: {dsn: {embedded: true, dbname: trial}}
"""


def test_another_database_on_the_sandbox(sandboxed: Project) -> None:
    sandboxed.write("inventory.yaml", TRIAL_INVENTORY)
    book = sandboxed.playbook(
        "name: t\nkind: change\nsteps:\n  - name: Mark\n    sql: CREATE TABLE trial_mark (n int)\n"
        "  - name: Where\n    query: SELECT current_database() AS db\n    register: w\n"
        "    gate: {that: \"w.scalar == 'trial'\"}\n"
    )
    # Created on first use, empty: the table is new there and nowhere else.
    result = sandboxed.run("run", str(book), "-t", "trial")
    assert result.exit_code == 0, result.output
    default_dsn = sandboxed.run("sandbox", "status", "--dsn").stdout.strip()
    with psycopg.connect(default_dsn) as conn:
        assert conn.execute("SELECT to_regclass('trial_mark')").fetchone() == (None,)


def test_createdb_from_a_file_and_psql(sandboxed: Project) -> None:
    sandboxed.write("seed.sql", "CREATE TABLE seeded (n int);\nINSERT INTO seeded VALUES (7);\n")
    made = sandboxed.run("sandbox", "createdb", "seeded_db", "--from", "seed.sql")
    assert made.exit_code == 0, made.output
    with psycopg.connect(made.stdout.strip()) as conn:
        assert conn.execute("SELECT n FROM seeded").fetchone() == (7,)
    again = sandboxed.run("sandbox", "createdb", "seeded_db")
    assert again.exit_code == 2 and "already has a database 'seeded_db'" in again.output
    # A file that fails half way leaves no half-loaded database behind.
    sandboxed.write("broken.sql", "CREATE TABLE a (n int);\nSELECT 1/0;\n")
    broken = sandboxed.run("sandbox", "createdb", "broken_db", "--from", "broken.sql")
    assert broken.exit_code == 2 and "division by zero" in broken.output, broken.output
    assert sandboxed.run("sandbox", "createdb", "broken_db").exit_code == 0  # it was dropped
    # psql is the server's own, on the database named (exec'd: run it as a process).
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook.cli",
            "sandbox",
            "psql",
            "seeded_db",
            "-At",
            "-c",
            "SELECT n FROM seeded",
        ],
        cwd=sandboxed.root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "7", done.stderr
    missing = sandboxed.run("sandbox", "psql", "nowhere")
    assert missing.exit_code == 2 and "createdb nowhere" in missing.output


@pytest.mark.parametrize("name", ["runbook_journal", "template1", "Bad-Name"])
def test_names_a_sandbox_database_may_not_take(sandboxed: Project, name: str) -> None:
    result = sandboxed.run("sandbox", "createdb", name)
    assert result.exit_code == 2 and "cannot be a sandbox database" in result.output
    sandboxed.write(
        "inventory.yaml",
        f"targets:\n  x: {{dsn: {{embedded: true, dbname: {name!r}}}}}\n",
    )
    checked = sandboxed.run("validate", "inventory.yaml")
    assert checked.exit_code == 2 and "inventory.yaml:" in checked.output, checked.output


def test_processes_setting_up_a_fresh_sandbox_at_once_all_get_it_loaded_once(
    sandboxed: Project,
) -> None:
    """Routines firing together on a fresh clone each ask for the sandbox: one
    sets it up (start, preload, demo), the others wait and find it ready;
    none drops the demo another is loading."""
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from runbook.pg import sandbox; "
        "print(sandbox.dsn(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None))"
    )
    argv = [sys.executable, "-c", code, str(sandboxed.root)]
    processes = [
        subprocess.Popen(argv + extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for extra in ([], [], ["other_db"], [])
    ]
    results = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0, 0], [err for _, err in results]
    dsns = {out.strip() for out, _ in results}
    assert len(dsns) == 2  # the sandbox's database, and other_db
    main = next(d for d in dsns if "other_db" not in d)
    with psycopg.connect(main) as conn:
        assert conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone() == (
            "pg_stat_statements",
        )
        description = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
            " WHERE datname = current_database()"
        ).fetchone()
    assert description is not None and str(description[0]).startswith("runbook demo")


def test_a_sandbox_that_cannot_start_says_why_in_a_few_lines(sandboxed: Project) -> None:
    import subprocess
    import sys

    assert sandboxed.run("sandbox", "up").exit_code == 0
    assert sandboxed.run("sandbox", "down").exit_code == 0
    pgdata = sandboxed.root / ".runbook" / "sandbox" / "pgdata"
    with (pgdata / "postgresql.auto.conf").open("a") as conf:
        conf.write("shared_buffers = 'banana'\n")
    # A process of its own: what reaches its stderr is what an operator sees
    # (the wheel's own error repeats the server's whole log).
    done = subprocess.run(
        [sys.executable, "-m", "runbook", "sandbox", "up"],
        cwd=sandboxed.root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    said = done.stdout + done.stderr
    assert done.returncode != 0
    assert "could not start the embedded PostgreSQL" in said and "banana" in said
    assert "Showing contents of postgres server log" not in said
    assert len(said.splitlines()) <= 20, said
