"""Steps stopped while they may have been acting: a command killed at its
timeout, a request sent and never answered, a statement whose server stops
answering (runbook.engine.outside, runbook.pg.watchdog). A non-transactional
one is `unknown`, never guessed; a statement never holds the run past its
timeout, its cancel and CUT_GRACE."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from runbook.outcome import Status
from runbook.pg import marker
from runbook.pg.watchdog import CUT_GRACE

from .conftest import Project
from .lostreply import Proxy


def _steps(project: Project) -> list[Any]:
    run_id = project.runs()[0]["id"]
    return list(project.journal().steps(run_id))


def test_a_writing_command_killed_at_its_timeout_is_unknown_and_resume_asks(
    project: Project,
) -> None:
    out = project.root / "out.txt"
    book = project.playbook(
        "name: slowcmd\nkind: change\nsteps:\n"
        f'  - {{name: Append then hang, shell: {{command: "echo line >> {out}; sleep 30"}}, timeout: 0.5}}\n'
        "  - {name: After, sql: SELECT 1}\n"
    )
    result = project.run("run", str(book))
    assert result.exit_code == 3, result.output
    killed = _steps(project)[0]
    assert killed.status is Status.UNKNOWN and "outcome unknown" in (killed.reason or "")
    halted = project.run("resume", project.runs()[0]["id"])
    assert halted.exit_code == 3 and "--unknown" in halted.output, halted.output
    assert out.read_text() == "line\n"  # not run again behind the operator's back


class _Silent:
    """A loopback HTTP server that reads each request and never answers."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[bytes] = []
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(client)
            self.requests.append(client.recv(65536))

    def close(self) -> None:
        self.listener.close()
        for client in self.held:
            client.close()


@pytest.fixture
def silent() -> Iterator[_Silent]:
    server = _Silent()
    yield server
    server.close()


def test_a_request_sent_and_never_answered_is_unknown_one_never_sent_failed(
    project: Project, silent: _Silent
) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    nowhere = closed.getsockname()[1]
    closed.close()  # a port nothing listens on: the request is never sent
    book = project.playbook(
        "name: hooks\nkind: change\non_failure: continue\nsteps:\n"
        f"  - {{name: Sent, http: {{url: 'http://127.0.0.1:{silent.port}/x', method: POST, body: go}}, timeout: 0.5}}\n"
        f"  - {{name: Never sent, http: {{url: 'http://127.0.0.1:{nowhere}/x', method: POST, body: go}}, timeout: 0.5}}\n"
        f"  - {{name: Read only, http: {{url: 'http://127.0.0.1:{silent.port}/y'}}, timeout: 0.5}}\n"
    )
    result = project.run("run", str(book))
    assert result.exit_code == 3, result.output
    sent, never, read = _steps(project)[:3]
    assert sent.status is Status.UNKNOWN, sent.reason
    assert never.status is Status.FAILED and "unknown" not in (never.reason or "")
    assert read.status is Status.FAILED  # a GET changes nothing: failed, not unknown
    assert any(r.startswith(b"POST /x") for r in silent.requests)


@pytest.fixture
def held(project: Project) -> Iterator[Proxy]:
    found = Proxy(conninfo_to_dict(project.dsn))
    project.write(
        "inventory.yaml",
        f"targets:\n  db: {{dsn: '{found.dsn()}'}}\n  direct: {{dsn: '{project.dsn}'}}\n",
    )
    yield found
    found.listener.close()


@pytest.mark.timeout(120)
def test_a_statement_whose_server_stops_answering_ends_past_its_cancel(
    project: Project, held: Proxy
) -> None:
    # The server runs the statement and its answers are dropped from then
    # on, the connection left open: the cancel is answered by nobody. The
    # step ends CUT_GRACE after the cancel, and the run halts.
    book = project.playbook(
        "name: frozen\nkind: check\nsteps:\n"
        "  - {name: Frozen, query: 'SELECT 1 AS marker_frozen', timeout: 0.5}\n"
        "  - {name: Next, query: SELECT 2}\n"
    )
    held.arm("hold_reply", on=b"marker_frozen")
    started = time.monotonic()
    result = project.run("run", str(book), "-t", "db")
    took = time.monotonic() - started
    assert result.exit_code == 3, result.output
    assert "cut the connection" in result.output and "Traceback" not in result.output
    assert took < 0.5 + 2.0 + CUT_GRACE + 10  # timeout, cancel grace, cut grace, slack
    frozen, after = _steps(project)[:2]
    assert frozen.status is Status.FAILED  # read-only: nothing to be unknown about
    assert after.status is Status.NOT_RUN and "cannot be reached" in (after.reason or "")


@pytest.mark.timeout(120)
def test_a_commit_whose_answer_never_comes_ends_and_resume_finds_it_by_its_marker(
    project: Project, held: Proxy
) -> None:
    with psycopg.connect(project.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE effects (what text NOT NULL)")
        marker.ensure(conn)  # made before: the COMMIT held is the step's own
    book = project.playbook(
        "name: frozencommit\nkind: change\nsteps:\n"
        "  - {name: Write, sql: \"INSERT INTO effects VALUES ('once')\", timeout: 0.5}\n"
        "  - {name: After, sql: \"INSERT INTO effects VALUES ('after')\"}\n"
    )
    held.arm("hold_reply", on=b"COMMIT")
    result = project.run("run", str(book), "-t", "db", "--yes")
    assert result.exit_code == 3, result.output
    assert "cut the connection" in result.output
    run_id = project.runs()[0]["id"]
    project.write(
        "inventory.yaml", f"targets:\n  db: {{dsn: '{project.dsn}'}}\n"
    )  # the server answers again
    resumed = project.run("resume", run_id, "--yes")
    assert resumed.exit_code == 0, resumed.output
    with psycopg.connect(project.dsn) as conn:
        rows = [r[0] for r in conn.execute("SELECT what FROM effects ORDER BY what").fetchall()]
    assert rows == ["after", "once"]  # the held COMMIT committed: not made again
