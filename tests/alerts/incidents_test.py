"""Escalation end to end: a planted fault, real receivers on loopback, a pinned clock.

An HTTP receiver records every request (and fails on purpose where told); a
real SMTP server (aiosmtpd) receives the mail. Time is `$RUNBOOK_NOW`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from typing import Any

import psycopg
import pytest

from .. import loopback
from ..conftest import Project
from ..loopback import Receiver, smtp_server

receiver = loopback.receiver  # the fixture, for the tests here

Conn = psycopg.Connection[tuple[object, ...]]
T0 = "2026-11-23T08:00:00.000Z"


@dataclass
class Mailbox:
    port: int
    messages: list[Any] = field(default_factory=list)

    def to(self, address: str) -> list[Any]:
        return [m for m in self.messages if address in m["To"]]


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    box = Mailbox(0)
    with smtp_server(lambda raw: box.messages.append(message_from_bytes(raw))) as port:
        box.port = port
        yield box


def _inventory(project: Project, receiver: Receiver, smtp: Mailbox) -> None:
    url = receiver.url
    project.write(
        "inventory.yaml",
        f"""targets:
  db: {{dsn: {project.dsn!r}}}
channels:
  hook: {{type: webhook, url: {url}/hook, headers: {{X-Token: {{from_env: HOOK_TOKEN}}}}, retry: {{attempts: 3, delay: 0.01}}}}
  flaky: {{type: webhook, url: {url}/flaky, retry: {{attempts: 3, delay: 0.01}}}}
  chat: {{type: slack, url: {url}/slack, channel: '#ops', retry: {{delay: 0}}}}
  pd: {{type: pagerduty, routing_key: {{from_env: PD_KEY}}, url: {url}/pd, retry: {{delay: 0}}}}
  mail: {{type: email, host: 127.0.0.1, port: {smtp.port}, from: runbook@example.com, retry: {{delay: 0}}}}
  log: {{type: file, path: notifications.jsonl}}
  script: {{type: command, argv: [{sys.executable!r}, -c, "import sys; open('command.json', 'w').write(sys.stdin.read())"]}}
policies:
  oncall:
    threshold: WARNING
    severities:
      CRITICAL:
        acknowledge_within: 15m
        mitigate_within: 1h
        levels:
          - name: Database Administrator
            after: 0m
            notify: [hook, flaky, pd, log, script, {{channel: mail, to: [dba@example.com]}}]
          - name: Production Supervisor
            after: 15m
            notify: [chat, {{channel: mail, to: [boss@example.com]}}]
          - name: Executive
            after: 60m
            notify: [{{channel: mail, to: [exec@example.com]}}]
""",
    )


CHECK = """name: morning-check
kind: check
escalation: oncall
steps:
  - name: Panels with an impossible status
    query: SELECT count(*) AS n FROM panels WHERE status = 'LOST'
    register: lost
    gate:
      that: lost.scalar == 0
      severity: CRITICAL
      message: "{{ lost.scalar }} panels lost: stop the line and call the DBA"
"""


def _at(monkeypatch: pytest.MonkeyPatch, minutes: int) -> None:
    hours, mins = divmod(minutes, 60)
    monkeypatch.setenv("RUNBOOK_NOW", f"2026-11-23T{8 + hours:02d}:{mins:02d}:00.000Z")


def test_escalation_timeline_end_to_end(
    project: Project, conn: Conn, receiver: Receiver, smtp: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "hook-s3cret")
    monkeypatch.setenv("PD_KEY", "pd-routing-s3cret")
    receiver.fail_first["/flaky"] = 2
    _inventory(project, receiver, smtp)
    conn.execute("CREATE TABLE panels (status text)")
    conn.execute("INSERT INTO panels VALUES ('LOST'), ('LOST'), ('DONE')")
    book = project.playbook(CHECK)

    # 08:00 — the failed CRITICAL gate opens one incident and pages level 1.
    _at(monkeypatch, 0)
    first = project.run("run", str(book))
    assert first.exit_code == 1
    assert (
        "incident 1 opened (CRITICAL, morning-check:Panels with an impossible status:db)"
        in first.stdout
    )
    (hook,) = receiver.on("/hook")
    assert hook["headers"]["X-Token"] == "hook-s3cret"
    assert hook["json"]["event"] == "trigger" and hook["json"]["severity"] == "CRITICAL"
    assert hook["json"]["message"] == "2 panels lost: stop the line and call the DBA"
    (pd,) = receiver.on("/pd")
    assert (
        pd["json"]["event_action"] == "trigger" and pd["json"]["routing_key"] == "pd-routing-s3cret"
    )
    assert pd["json"]["dedup_key"] == "morning-check:Panels with an impossible status:db"
    assert pd["json"]["payload"]["severity"] == "critical"
    assert len(receiver.on("/flaky")) == 3  # failed twice, then delivered
    (dba,) = smtp.to("dba@example.com")
    assert "2 panels lost" in dba["Subject"] or "2 panels lost" in dba.get_payload()
    logged = [
        json.loads(line) for line in (project.root / "notifications.jsonl").read_text().splitlines()
    ]
    assert [n["event"] for n in logged] == ["trigger"]
    assert json.loads((project.root / "command.json").read_text())["incident"]["id"] == 1

    # The journal shows the three attempts of the flaky receiver.
    journal = project.journal()
    (flaky,) = journal.query("SELECT * FROM deliveries WHERE channel = 'flaky'")
    attempts = journal.query(
        "SELECT attempt, ok, detail FROM attempts"
        f" WHERE delivery_id = {int(flaky['id'])} ORDER BY attempt"
    )
    assert [(a["attempt"], a["ok"]) for a in attempts] == [(1, 0), (2, 0), (3, 1)]
    assert "HTTP 500" in attempts[0]["detail"] and flaky["status"] == "delivered"
    journal.close()

    # 08:01 — the same failure again: counted, not paged again.
    _at(monkeypatch, 1)
    second = project.run("run", str(book))
    assert second.exit_code == 1 and "updated (seen 2 times; not paged again)" in second.stdout
    assert len(receiver.requests) == 5 and len(smtp.messages) == 1

    # 08:10 — nothing is due yet.
    _at(monkeypatch, 10)
    assert project.run("escalations", "tick").stdout == ""

    # 08:16 — level 2 is due: the supervisor is told.
    _at(monkeypatch, 16)
    ticked = project.run("escalations", "tick")
    assert (
        "incident 1" in ticked.stdout
        and "level 2 Production Supervisor: chat delivered, mail delivered" in ticked.stdout
    )
    (chat,) = receiver.on("/slack")
    assert chat["json"]["channel"] == "#ops" and "[CRITICAL]" in chat["json"]["text"]
    assert len(smtp.to("boss@example.com")) == 1
    assert project.run("escalations", "tick").stdout == ""  # idempotent

    # 08:20 — alice acknowledges: level 3 is never notified.
    _at(monkeypatch, 20)
    acked = project.run("ack", "1", "--by", "alice")
    assert acked.exit_code == 0 and "incident 1 acknowledged by alice" in acked.stdout
    assert [r["json"]["event_action"] for r in receiver.on("/pd")] == ["trigger", "acknowledge"]
    _at(monkeypatch, 61)
    assert project.run("escalations", "tick").stdout == ""
    assert smtp.to("exec@example.com") == []

    listing = json.loads(project.run("incidents", "--format", "json").stdout)
    (incident,) = listing
    assert incident["status"] == "acknowledged" and incident["acknowledged_by"] == "alice"
    assert (
        incident["occurrences"] == 2 and incident["acknowledge_due"] == "2026-11-23T08:15:00.000Z"
    )

    # Resolve closes it; a new failure afterwards opens a new incident.
    _at(monkeypatch, 70)
    resolved = project.run("resolve", "1", "--note", "lost panels found in bay 3")
    assert resolved.exit_code == 0
    assert receiver.on("/pd")[-1]["json"]["event_action"] == "resolve"
    assert "#1 CRITICAL resolved" in project.run("incidents").stdout
    assert project.run("incidents", "--open").stdout == ""
    third = project.run("run", str(book))
    assert "incident 2 opened" in third.stdout

    # Secrets from the environment never reach the journal.
    raw = project.journal_bytes()
    assert b"incident" in raw  # the journal was read
    assert b"hook-s3cret" not in raw and b"pd-routing-s3cret" not in raw
    assert project.journal().verify() == []


def test_failed_delivery_is_reported_and_never_breaks_the_run(
    project: Project, conn: Conn, receiver: Receiver, smtp: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "x")
    monkeypatch.setenv("PD_KEY", "y")
    receiver.fail_first["/flaky"] = 99
    _inventory(project, receiver, smtp)
    conn.execute("CREATE TABLE panels (status text)")
    conn.execute("INSERT INTO panels VALUES ('LOST')")
    _at(monkeypatch, 0)
    result = project.run("run", str(project.playbook(CHECK)))
    assert result.exit_code == 1  # the gate's verdict, not a delivery error
    assert "flaky failed after 3 attempt(s): HTTP 500" in result.stdout
    shown = project.run("incidents").stdout
    assert "1 failed; flaky failed after 3 attempt(s): HTTP 500" in shown


def test_gates_failing_while_deliveries_are_under_way_each_open_their_incident(
    project: Project, conn: Conn, receiver: Receiver, smtp: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Deliveries go out on their own thread and share the journal with the run:
    # slow ones are still writing when the next gate fails and the notify step runs.
    monkeypatch.setenv("HOOK_TOKEN", "x")
    monkeypatch.setenv("PD_KEY", "y")
    receiver.slow["/hook"] = 0.05
    receiver.fail_first["/flaky"] = 4
    _inventory(project, receiver, smtp)
    gates = "".join(
        f"""  - name: Check {n}
    query: SELECT {n} AS n
    register: r{n}
    on_failure: continue
    gate: {{that: r{n}.scalar == 0, severity: CRITICAL, message: "check {n} failed", name: check_{n}}}
"""
        for n in range(1, 6)
    )
    book = project.playbook(
        f"""name: many-gates
kind: check
escalation: oncall
steps:
{gates}  - name: Tell the log
    notify: {{channels: [log], message: all checks done}}
"""
    )
    _at(monkeypatch, 0)
    result = project.run("run", str(book))
    assert result.exit_code == 1, result.output
    for n in range(1, 6):
        assert f"many-gates:check_{n}:db" in result.stdout
    assert "could not be opened" not in result.stdout
    incidents = project.journal().query("SELECT key FROM incidents ORDER BY id")
    assert [i["key"] for i in incidents] == [f"many-gates:check_{n}:db" for n in range(1, 6)]
    assert len(receiver.on("/hook")) == 5
    assert project.last_run()["steps"][-1]["status"] == "ok"
    assert project.journal().verify() == []


def test_two_ticks_at_once_notify_once(
    project: Project, conn: Conn, receiver: Receiver, smtp: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "x")
    monkeypatch.setenv("PD_KEY", "y")
    _inventory(project, receiver, smtp)
    conn.execute("CREATE TABLE panels (status text)")
    conn.execute("INSERT INTO panels VALUES ('LOST')")
    _at(monkeypatch, 0)
    assert project.run("run", str(project.playbook(CHECK))).exit_code == 1
    env = {**os.environ, "RUNBOOK_NOW": "2026-11-23T09:30:00.000Z"}
    ticks = [
        subprocess.Popen(
            [sys.executable, "-m", "runbook", "escalations", "tick"],
            cwd=project.root,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [t.communicate(timeout=60)[0] for t in ticks]
    assert all(t.returncode == 0 for t in ticks)
    # Levels 2 and 3 are both due at 09:30, each notified exactly once.
    assert len(receiver.on("/slack")) == 1
    assert len(smtp.to("boss@example.com")) == 1 and len(smtp.to("exec@example.com")) == 1
    assert sum(o.count("incident 1") for o in outputs) == 2


def test_notify_and_escalate_steps(
    project: Project, conn: Conn, receiver: Receiver, smtp: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "x")
    monkeypatch.setenv("PD_KEY", "y")
    _inventory(project, receiver, smtp)
    book = project.playbook(
        """name: emergency
kind: emergency
escalation: oncall
steps:
  - name: Notify the production supervisors
    notify: {channels: [chat, mail], to: [supervisors@example.com], subject: Production stop, message: "Stop line 2 now ({{ target.name }})", severity: CRITICAL}
    register: told
  - name: Open an incident for the record
    escalate: {severity: CRITICAL, message: emergency rollback started, key: emergency-rollback}
"""
    )
    _at(monkeypatch, 0)
    result = project.run("run", str(book), "--yes")
    assert result.exit_code == 0, result.output
    (chat,) = receiver.on("/slack")
    assert (
        "Production stop" in chat["json"]["text"] and "Stop line 2 now (db)" in chat["json"]["text"]
    )
    assert len(smtp.to("supervisors@example.com")) == 1
    steps = project.last_run()["steps"]
    assert steps[0]["note"] == "2/2 delivered"
    assert steps[1]["note"].startswith("incident 1 (")
    assert len(receiver.on("/hook")) == 1  # the explicit incident paged level 1


def test_escalation_show(project: Project, receiver: Receiver, smtp: Mailbox) -> None:
    _inventory(project, receiver, smtp)
    shown = project.run("escalation", "show", "oncall", "--severity", "CRITICAL")
    assert shown.exit_code == 0
    assert shown.stdout.splitlines()[2:6] == [
        "  CRITICAL (acknowledge within 15m, mitigate within 1h)",
        "    +   0m  level 1 Database Administrator: hook, flaky, pd, log, script, mail (dba@example.com)",
        "    +  15m  level 2 Production Supervisor: chat, mail (boss@example.com)",
        "    +   1h  level 3 Executive: mail (exec@example.com)",
    ]
    # WARNING has no entry of its own: it uses the next one up.
    warning = project.run("escalation", "show", "oncall", "--severity", "HIGH")
    assert "level 1 Database Administrator" in warning.stdout
    assert project.run("escalation", "show", "nope").exit_code == 2
