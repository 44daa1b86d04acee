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
