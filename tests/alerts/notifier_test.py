"""Deliveries never hold a run up, and none is lost to a crash.

A receiver that accepts and never answers: the run (a failed gate, a notify
step) returns within the grace period, the delivery stays pending with the
reason, and the next `escalations tick` delivers it. A runbook killed with
SIGKILL in the middle of a delivery: the delivery is abandoned (its holder is
dead), `incidents` counts it, and the next tick — one of several at once —
sends it exactly once more, the cut-off attempt journaled.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from .. import loopback
from ..conftest import Project
from ..loopback import Receiver

receiver = loopback.receiver  # the fixture, for the tests here

Conn = psycopg.Connection[tuple[object, ...]]
HANG_DETECTOR = 15.0  # seconds: "did it hang", not a timing assertion


POLICY = """policies:
  oncall:
    threshold: WARNING
    severities:
      CRITICAL:
        levels:
          - {after: 0m, notify: [out]}
"""

GATE = """name: gate
kind: check
escalation: oncall
steps:
  - name: Always fails
    query: SELECT 1 AS n
    register: r
    gate: {that: r.scalar == 0, severity: CRITICAL, message: "the gate failed"}
"""

NOTIFY = """name: tell
kind: check
steps:
  - name: Tell
    notify: {channels: [out], message: "line 2 stopped", subject: stop}
  - name: After
    query: SELECT 1
"""


def _inventory(project: Project, channel: str, defaults: str = "") -> None:
    project.write(
        "inventory.yaml",
        f"targets:\n  db: {{dsn: {project.dsn!r}}}\ndefault_target: db\n{defaults}"
        f"channels:\n  out: {channel}\n{POLICY}",
    )


def _deliveries(project: Project) -> list[dict[str, Any]]:
    journal = project.journal()
    try:
        return journal.query("SELECT * FROM deliveries ORDER BY id")
    finally:
        journal.close()


def _attempts(project: Project, delivery_id: int) -> list[dict[str, Any]]:
    journal = project.journal()
    try:
        return journal.query(
            f"SELECT * FROM attempts WHERE delivery_id = {int(delivery_id)} ORDER BY attempt"
        )
    finally:
        journal.close()


@pytest.mark.parametrize("book", [GATE, NOTIFY], ids=["failed-gate", "notify-step"])
def test_a_hanging_receiver_holds_the_run_only_for_the_grace_period(
    project: Project, receiver: Receiver, book: str
) -> None:
    # The default attempt timeout (10 s) and retries (3): 33 s before.
    _inventory(project, f"{{type: webhook, url: {receiver.url}/hook}}")
    receiver.hang.add("/hook")
    started = time.monotonic()
    result = project.run("run", str(project.playbook(book)))
    assert time.monotonic() - started < HANG_DETECTOR
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    (row,) = _deliveries(project)
    assert row["status"] == "pending" and receiver.held >= 1
    assert "the run ended before it was delivered (grace period 2s)" in row["error"]
    assert "[held by" not in row["error"]  # let go: the next tick takes it
    assert "out pending after 1 attempt(s): the run ended before it was delivered" in result.stdout
    listed = project.run("incidents")
    assert "pending after 1 attempt(s) (left for the next tick)" in listed.stdout
    assert "no answer before the run ended" in _attempts(project, row["id"])[0]["detail"]
    if book is NOTIFY:
        steps = project.last_run()["steps"]
        assert steps[0]["note"] == "0/1 delivered, 1 pending"
        assert steps[1]["status"] == "ok"  # the run went on

    receiver.hang.clear()
    ticked = project.run("escalations", "tick")
    assert ticked.exit_code == 0, ticked.output
    assert f"delivery {row['id']} (" in ticked.stdout and "retried: delivered" in ticked.stdout
    (got,) = receiver.on("/hook")
    assert got["json"]["message"] in ("the gate failed", "line 2 stopped")
    (row,) = _deliveries(project)
    assert row["status"] == "delivered" and row["attempts"] == 2
    assert [a["ok"] for a in _attempts(project, row["id"])] == [0, 1]
    assert project.run("escalations", "tick").stdout == ""  # delivered once: nothing more
    assert project.journal().verify() == []


def test_the_grace_period_is_configurable_and_checked(project: Project, receiver: Receiver) -> None:
    _inventory(
        project,
        f"{{type: webhook, url: {receiver.url}/hook}}",
        "defaults: {delivery_grace: 500ms}\n",
    )
    receiver.hang.add("/hook")
    project.run("run", str(project.playbook(GATE)))
    (row,) = _deliveries(project)
    assert "(grace period 0.5s)" in row["error"]
    _inventory(
        project, f"{{type: webhook, url: {receiver.url}/hook}}", "defaults: {delivery_grace: 1h}\n"
    )
    refused = project.run("run", str(project.playbook(GATE)))
    assert refused.exit_code == 2 and "delivery_grace must be at most 60s" in refused.output
    assert "inventory.yaml:4:" in refused.output


# The command channel: hangs while the file `hang` exists (after saying so in
# `started`), else appends the notification to received.jsonl.
RECEIVER = (
    "import os, sys, time\n"
    "note = sys.stdin.read()\n"
    "if os.path.exists('hang'):\n"
    "    open('started', 'w').write(str(os.getpid()))\n"
    "    time.sleep(120)\n"
    "open('received.jsonl', 'a').write(note.replace(chr(10), ' ') + chr(10))\n"
)


def _wait_for(path: Path, what: str) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.05)


@pytest.mark.parametrize("book", [GATE, NOTIFY], ids=["failed-gate", "notify-step"])
def test_a_delivery_cut_off_by_kill_9_is_sent_by_the_next_tick_once(
    project: Project, book: str
) -> None:
    run = _kill_mid_delivery(project, book)

    # Three ticks at once: one of them sends it, once.
    ticks = [
        subprocess.Popen(
            [sys.executable, "-m", "runbook", "escalations", "tick"],
            cwd=project.root,
            env=os.environ.copy(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [t.communicate(timeout=120) for t in ticks]
    assert all(t.returncode == 0 for t in ticks), outputs
    assert sum(out.count("retried: delivered") for out, _ in outputs) == 1
    _assert_sent_again(project, run.pid)


def _kill_mid_delivery(project: Project, book: str) -> subprocess.Popen[bytes]:
    """A run killed with SIGKILL while its command channel is delivering."""
    argv = json.dumps([sys.executable, "-c", RECEIVER])
    # A long grace period: the run is surely still waiting when it is killed.
    _inventory(project, f"{{type: command, argv: {argv}}}", "defaults: {delivery_grace: 60s}\n")
    path = project.playbook(book)
    (project.root / "hang").touch()
    run = subprocess.Popen(
        [sys.executable, "-m", "runbook", "run", str(path)],
        cwd=project.root,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(project.root / "started", "the delivery")
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait(30)
    child = int((project.root / "started").read_text())
    os.kill(child, signal.SIGKILL)
    (project.root / "hang").unlink()

    (row,) = _deliveries(project)
    assert row["status"] == "pending" and row["attempts"] == 1
    listed = project.run("incidents")
    assert "pending after 1 attempt(s) (left for the next tick)" in listed.stdout
    return run


def test_a_delivery_cut_off_by_kill_9_is_sent_by_the_next_run(project: Project) -> None:
    run = _kill_mid_delivery(project, GATE)
    quiet = project.playbook("name: quiet\nkind: check\nsteps:\n  - {name: One, query: SELECT 1}\n")
    assert project.run("run", str(quiet)).exit_code == 0
    _assert_sent_again(project, run.pid)


def _assert_sent_again(project: Project, dead: int) -> None:
    received = (project.root / "received.jsonl").read_text().splitlines()
    assert len(received) == 1
    assert json.loads(received[0])["message"] in ("the gate failed", "line 2 stopped")
    (row,) = _deliveries(project)
    assert row["status"] == "delivered" and row["attempts"] == 2
    first, second = _attempts(project, row["id"])
    assert first["ok"] == 0 and f"pid {dead}" in first["detail"]
    assert "ended during this attempt" in first["detail"] and second["ok"] == 1
    assert project.journal().verify() == []


@pytest.fixture
def trickler() -> Iterator[int]:
    """A TCP server that accepts and sends one byte every 0.2 s, never a whole
    line: a socket timeout alone never fires."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    closing = threading.Event()

    def drip(conn: socket.socket) -> None:
        with conn:
            while not closing.wait(0.2):
                try:
                    conn.sendall(b"2")
                except OSError:
                    return

    def serve() -> None:
        while not closing.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    closing.set()
    listener.close()


@pytest.mark.parametrize("kind", ["webhook", "email", "command"])
def test_one_attempt_ends_within_its_timeout_whatever_the_receiver_does(
    project: Project, trickler: int, kind: str
) -> None:
    channel = {
        "webhook": f"url: http://127.0.0.1:{trickler}/hook",
        "email": f"host: 127.0.0.1, port: {trickler}, from: rb@example.com, to: [a@example.com]",
        # The shell is killed at the timeout; the sleep it left keeps the pipe open.
        "command": "argv: [sh, -c, 'sleep 8 & sleep 8']",
    }[kind]
    _inventory(
        project,
        f"{{type: {kind}, {channel}, timeout: 1s, retry: {{attempts: 2, delay: 0}}}}",
        "defaults: {delivery_grace: 30s}\n",
    )
    started = time.monotonic()
    result = project.run("run", str(project.playbook(NOTIFY)))
    assert time.monotonic() - started < HANG_DETECTOR, "an attempt outlived its timeout"
    assert result.exit_code == 0, result.output
    (row,) = _deliveries(project)
    assert row["status"] == "failed" and row["attempts"] == 2
    for attempt in _attempts(project, row["id"]):
        assert attempt["ok"] == 0 and attempt["detail"]


def test_a_delivery_an_older_runbook_left_pending_is_sent_from_its_incident(
    project: Project, receiver: Receiver
) -> None:
    # Before this version a planned delivery had no holder and no note: kill -9
    # left it pending with 0 attempts, and nothing ever sent it.
    _inventory(project, f"{{type: webhook, url: {receiver.url}/hook}}")
    assert project.run("run", str(project.playbook(GATE))).exit_code == 1
    at = "2026-11-23T08:00:00.000Z"
    row = {
        "incident_id": 1, "run_id": None, "channel": "out", "event": "trigger", "level": 1,
        "status": "pending", "attempts": 0, "created_at": at, "updated_at": at,
    }  # fmt: skip
    journal = project.journal()
    journal.append(
        [(at, None, "delivery.planned", {"table": "deliveries", "op": "insert", "row": row})]
    )
    journal.close()
    ticked = project.run("escalations", "tick")
    assert "retried: delivered" in ticked.stdout, ticked.output
    first, again = receiver.on("/hook")
    assert again["json"]["message"] == first["json"]["message"] == "the gate failed"
    assert again["json"]["incident"]["id"] == 1 and again["json"]["level"] == 1


def _journal_connections(project: Project) -> int:
    """The journal connections this process holds: PostgreSQL backends of the
    journal's database named runbook's, or descriptors open on the SQLite file."""
    if project.journal_dsn is not None:
        with psycopg.connect(project.journal_dsn) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = 'runbook'"
            ).fetchone()
        return int(row[0]) if row else 0
    mine = os.path.realpath(project.root / ".runbook" / "journal.sqlite")
    return sum(1 for fd in Path("/proc/self/fd").iterdir() if os.path.realpath(fd) == mine)


def test_a_long_lived_process_keeps_no_journal_connection_a_run(
    project: Project, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker or a scheduler runs thousands of runs in one process: the
    connection its notifiers wrote through is closed with each run (once its
    deliveries end), not left open one a run."""
    from runbook import report, service
    from runbook.commands import notifications

    project.write(
        "inventory.yaml",
        f"targets:\n  db: {{dsn: {project.dsn!r}}}\n"
        f"channels:\n  hook: {{type: webhook, url: {receiver.url}/hook, retry: {{delay: 0}}}}\n"
        "policies:\n  oncall:\n    severities:\n      CRITICAL:\n"
        "        levels: [{after: 0m, notify: [hook]}]\n",
    )
    book = project.playbook(
        "name: paged\nkind: check\nescalation: oncall\nsteps:\n"
        "  - name: Broken\n    query: SELECT 1 AS n\n    register: r\n"
        "    gate: {that: r.scalar == 0, severity: CRITICAL}\n"
    )
    monkeypatch.chdir(project.root)
    spec = service.RunSpec(playbook=book, inventory=project.root / "inventory.yaml")
    before = _journal_connections(project)
    for _ in range(4):
        (outcome,) = service.run(spec, report.SilentReporter, None, notifications.notifier_for)
        assert outcome.status.value == "gate_failed"
    assert receiver.on("/hook"), "the incident was paged"
    deadline = time.monotonic() + 10
    while _journal_connections(project) > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _journal_connections(project) == before


def test_a_ctrl_c_while_the_run_waits_for_a_hanging_receiver_lets_go_and_journals_the_end(
    project: Project, receiver: Receiver
) -> None:
    # A long grace period and a receiver that never answers: the run waits for
    # the delivery, and the operator presses Ctrl-C (SIGINT, to this process)
    # once it is waiting. The Ctrl-C once escaped the run and left it without
    # an end; now the delivery is let go at once and the run ends interrupted.
    _inventory(
        project, f"{{type: webhook, url: {receiver.url}/hook}}", "defaults: {delivery_grace: 60s}\n"
    )
    receiver.hang.add("/hook")
    main = threading.main_thread().ident
    pressed: list[bool] = []

    def waiting_for_deliveries() -> bool:
        frame = sys._current_frames().get(main or 0)
        while frame is not None:
            if frame.f_code.co_name == "finish" and "alerts" in frame.f_code.co_filename:
                return True
            frame = frame.f_back
        return False

    def press_ctrl_c() -> None:
        deadline = time.monotonic() + HANG_DETECTOR
        while time.monotonic() < deadline:
            if receiver.held and waiting_for_deliveries():
                os.kill(os.getpid(), signal.SIGINT)
                pressed.append(True)
                return
            time.sleep(0.02)

    operator = threading.Thread(target=press_ctrl_c, daemon=True)
    operator.start()
    started = time.monotonic()
    result = project.run("run", str(project.playbook(GATE)))
    operator.join(timeout=HANG_DETECTOR)
    assert pressed and time.monotonic() - started < HANG_DETECTOR
    assert result.exit_code == 130, result.output  # Ctrl-C, at any point
    assert "Traceback" not in result.output
    run = project.last_run()
    assert run["status"] == "interrupted" and run["ended_at"]
    assert run["reason"].startswith("interrupted (Ctrl-C) while its deliveries went, after: a gate")
    assert [s["status"] for s in run["steps"]] == ["gate_failed"]  # as it ended
    (row,) = _deliveries(project)
    assert row["status"] == "pending" and "[held by" not in row["error"]
    assert (
        "delivery cut short by Ctrl-C; the next `runbook escalations tick` sends it"
        in (row["error"])
    )
    receiver.hang.clear()
    assert "retried: delivered" in project.run("escalations", "tick").stdout
    assert project.journal().verify() == []
