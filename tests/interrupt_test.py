"""Ctrl-C: the running statement is cancelled on the server and the journal says so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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
    proc = subprocess.Popen(
        [sys.executable, "-m", "runbook", "run", str(book)],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RUNBOOK_OPERATOR": "tester"},
    )
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
