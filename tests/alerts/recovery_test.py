"""An incident resolves itself when its gate passes again, telling every
channel that was paged; a gate that flaps within the policy's flap_window is
counted, not paged again (issue 15, item 7). Real receivers on loopback, the
clock pinned."""

from __future__ import annotations

import psycopg
import pytest

from .. import loopback
from ..conftest import Project
from ..loopback import Receiver

receiver = loopback.receiver

Conn = psycopg.Connection[tuple[object, ...]]


def _inventory(project: Project, receiver: Receiver, flap: str | None) -> None:
    url = receiver.url
    window = f"\n    flap_window: {flap}" if flap else ""
    project.write(
        "inventory.yaml",
        f"""targets:
  db: {{dsn: {project.dsn!r}}}
channels:
  hook: {{type: webhook, url: {url}/hook, retry: {{delay: 0}}}}
  pd: {{type: pagerduty, routing_key: rk, url: {url}/pd, retry: {{delay: 0}}}}
policies:
  oncall:
    threshold: WARNING{window}
    severities:
      CRITICAL:
        acknowledge_within: 15m
        levels:
          - {{after: 0m, notify: [hook, pd]}}
""",
    )


CHECK = """name: stock
kind: check
escalation: oncall
steps:
  - name: Lost
    query: SELECT count(*) AS n FROM lost
    register: lost
    gate:
      that: lost.scalar == 0
      severity: CRITICAL
      message: "{{ lost.scalar }} lost"
"""


def _at(monkeypatch: pytest.MonkeyPatch, minute: int) -> None:
    monkeypatch.setenv("RUNBOOK_NOW", f"2026-11-23T08:{minute:02d}:00.000Z")


def test_a_passing_gate_resolves_its_incident_and_tells_who_was_paged(
    project: Project, conn: Conn, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    _inventory(project, receiver, None)
    conn.execute("CREATE TABLE lost (n int)")
    conn.execute("INSERT INTO lost VALUES (1)")
    book = str(project.playbook(CHECK))
    _at(monkeypatch, 0)
    assert project.run("run", book).exit_code == 1
    assert [r["json"]["event_action"] for r in receiver.on("/pd")] == ["trigger"]
    conn.execute("DELETE FROM lost")
    _at(monkeypatch, 5)
    healed = project.run("run", book)
    assert healed.exit_code == 0, healed.output
    assert "incident 1 resolved: its gate passed again" in healed.stdout
    assert [r["json"]["event_action"] for r in receiver.on("/pd")] == ["trigger", "resolve"]
    assert [r["json"]["event"] for r in receiver.on("/hook")] == ["trigger", "resolve"]
    journal = project.journal()
    try:
        (incident,) = journal.incidents(only_open=False)
        assert incident.status.value == "resolved"
        assert incident.resolved_by == "runbook (its gate passed again)"
        assert journal.verify() == []
    finally:
        journal.close()
    # Passing again changes nothing and tells nobody.
    _at(monkeypatch, 6)
    assert project.run("run", book).exit_code == 0
    assert len(receiver.on("/pd")) == 2


@pytest.mark.parametrize("flap", [None, "30m"])
def test_a_flapping_gate_is_counted_not_paged_again(
    project: Project,
    conn: Conn,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    flap: str | None,
) -> None:
    _inventory(project, receiver, flap)
    conn.execute("CREATE TABLE lost (n int)")
    book = str(project.playbook(CHECK))
    for minute, lost in ((0, 1), (5, 0), (10, 1), (15, 0), (20, 1)):
        conn.execute("DELETE FROM lost")
        if lost:
            conn.execute("INSERT INTO lost VALUES (1)")
        _at(monkeypatch, minute)
        project.run("run", book)
    actions = [r["json"]["event_action"] for r in receiver.on("/pd")]
    journal = project.journal()
    try:
        incidents = journal.incidents(only_open=False)
    finally:
        journal.close()
    if flap is None:  # every failure is news: three incidents, each paged and resolved
        assert actions == ["trigger", "resolve", "trigger", "resolve", "trigger"]
        assert len(incidents) == 3
    else:  # one incident, reopened twice, counted; paged once, resolved once
        assert actions == ["trigger", "resolve"]
        (incident,) = incidents
        assert incident.occurrences == 3 and incident.status.value == "open"


def test_a_flap_after_a_person_resolved_it_is_news(
    project: Project, conn: Conn, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    _inventory(project, receiver, "30m")
    conn.execute("CREATE TABLE lost (n int)")
    conn.execute("INSERT INTO lost VALUES (1)")
    book = str(project.playbook(CHECK))
    _at(monkeypatch, 0)
    project.run("run", book)
    assert project.run("resolve", "1", "--note", "fixed by hand").exit_code == 0
    _at(monkeypatch, 5)
    project.run("run", book)
    journal = project.journal()
    try:
        assert len(journal.incidents(only_open=False)) == 2  # a new incident, paged
    finally:
        journal.close()


def test_a_fleet_resolves_each_targets_incident_from_one_read(
    project: Project, conn: Conn, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The targets of a group run at once share the read of their playbook's
    open incidents: each still resolves its own, and only its own."""
    _inventory(project, receiver, None)
    text = (project.root / "inventory.yaml").read_text()
    project.write(
        "inventory.yaml",
        text.replace(
            "targets:\n",
            f"targets:\n  db2: {{dsn: {project.dsn!r}}}\n  db3: {{dsn: {project.dsn!r}}}\n",
        )
        + "groups:\n  both: [db, db2]\n",
    )
    conn.execute("CREATE TABLE lost (n int)")
    conn.execute("INSERT INTO lost VALUES (1)")
    book = str(project.playbook(CHECK))
    _at(monkeypatch, 0)
    assert project.run("run", book, "-t", "both", "--forks", "2").exit_code == 1
    assert project.run("run", book, "-t", "db3").exit_code == 1
    conn.execute("DELETE FROM lost")
    _at(monkeypatch, 5)
    healed = project.run("run", book, "-t", "both", "--forks", "2")
    assert healed.exit_code == 0, healed.output
    journal = project.journal()
    try:
        status = {i.target: i.status.value for i in journal.incidents(only_open=False)}
        assert journal.verify() == []
    finally:
        journal.close()
    assert status == {"db": "resolved", "db2": "resolved", "db3": "open"}
