"""What the journal's reads return: typed records, alike on both backends."""

from __future__ import annotations

import socket
from dataclasses import fields
from typing import Any

import pytest

from runbook.errors import JournalError
from runbook.journal.events import STEP_COLUMNS
from runbook.journal.records import (
    DeliveryRecord,
    DeliveryStatus,
    EventRecord,
    IncidentRecord,
    IncidentStatus,
    RunMode,
    RunRecord,
    StepRecord,
)
from runbook.outcome import RunStatus, Status

from ..conftest import Project

AT = "2026-11-23T08:00:00.000Z"


def _insert(table: str, row: dict[str, Any], run_id: str | None = None) -> Any:
    return (AT, run_id, f"test.{table}", {"table": table, "op": "insert", "row": row})


def _incident_row(key: str, status: str = "open") -> dict[str, Any]:
    # As runbook.alerts.incidents opens one.
    return {
        "key": key, "playbook": "p", "gate": "g", "target": "db", "policy": "oncall",
        "severity": "CRITICAL", "status": status, "title": "p: g on db", "message": "down",
        "opened_at": AT, "updated_at": AT, "occurrences": 1, "last_run": None, "level": 0,
        "next_at": AT,
    }  # fmt: skip


def _delivery_row(incident_id: int | None, channel: str) -> dict[str, Any]:
    return {
        "incident_id": incident_id, "run_id": None, "channel": channel, "event": "page",
        "level": 1 if incident_id else None, "status": "pending", "attempts": 0, "error": None,
        "created_at": AT, "updated_at": AT,
    }  # fmt: skip


def test_runs_steps_and_events_read_back_typed(project: Project) -> None:
    book = project.playbook(
        "name: r\nkind: check\nsteps:\n  - {name: One, query: SELECT 1}\n  - {name: Two, query: SELECT 2}\n"
    )
    assert project.run("run", str(book)).exit_code == 0
    journal = project.journal()
    try:
        (listed,) = journal.runs()
        assert isinstance(listed, RunRecord) and listed.steps is None  # a listing has no steps
        run = journal.run(listed.id[:6])  # a prefix names it too
        assert run is not None and run.id == listed.id
        assert run.status is RunStatus.OK and run.mode is RunMode.RUN
        assert isinstance(run.pid, int) and isinstance(run.pid_started, float)
        assert isinstance(run.exit_code, int) and run.exit_code == 0
        assert isinstance(run.started_at, str) and isinstance(run.ended_at, str)
        assert isinstance(run.counts, dict) and run.counts["ok"] == 2
        assert isinstance(run.selection, dict) and isinstance(run.extra, dict)
        assert run.steps is not None and [s.name for s in run.steps] == ["One", "Two"]
        assert list(run.steps) == journal.steps(run.id)
        step = run.steps[0]
        assert isinstance(step, StepRecord) and step.status is Status.OK
        assert step.run_id == run.id and step.seq == 1 and step.idx == 0
        assert isinstance(step.duration_ms, float) and isinstance(step.started_at, str)
        assert step.phase == "main" and step.undoes is None and not step.outside
        assert isinstance(step.result, dict) and isinstance(step.gates, list)
        assert journal.continuation(run.id) is None and journal.running_on("no-such-host") == []
        events = journal.events()
        assert events and all(isinstance(e, EventRecord) for e in events)
        assert {e.kind for e in events} >= {"run.start", "step.start", "step.end", "run.end"}
        first = events[0]
        assert isinstance(first.seq, int) and isinstance(first.payload, str)
        assert isinstance(first.hash, str) and isinstance(first.prev_hash, str)
        # PostgreSQL chains each run's events apart: the stream and the place in it.
        if project.journal_dsn:
            assert isinstance(first.pos, int) and first.stream is not None
        else:
            assert first.pos is None and first.stream is None
    finally:
        journal.close()


def test_a_run_recorded_running_on_this_host_is_read_whole(project: Project) -> None:
    journal = project.journal()
    try:
        row = {
            "id": "alive", "playbook": "p", "mode": "rollback-check", "started_at": AT,
            "status": "running", "host": socket.gethostname(), "pid": 12345, "pid_started": 1.5,
        }  # fmt: skip
        journal.append([_insert("runs", row, "alive")])
        (run,) = journal.running_on(socket.gethostname())
        assert run.id == "alive" and run.status is RunStatus.RUNNING
        assert run.mode is RunMode.ROLLBACK_CHECK and run.pid == 12345 and run.pid_started == 1.5
    finally:
        journal.close()


def test_incidents_and_deliveries_read_back_typed(project: Project) -> None:
    journal = project.journal()
    try:
        (incident_id,) = journal.append([_insert("incidents", _incident_row("p/g/db"))])
        journal.append(
            [
                _insert("deliveries", _delivery_row(incident_id, "log")),
                _insert("deliveries", _delivery_row(None, "mail")),
            ]
        )
        incident = journal.incident(incident_id)
        assert isinstance(incident, IncidentRecord) and incident.status is IncidentStatus.OPEN
        assert isinstance(incident.id, int) and isinstance(incident.level, int)
        assert isinstance(incident.occurrences, int) and isinstance(incident.opened_at, str)
        assert journal.open_incident("p/g/db") == incident
        assert journal.incidents(only_open=True) == [incident]
        assert journal.incidents_due(AT) == [incident]
        assert IncidentRecord.from_row(incident.as_dict()) == incident
        resolved = incident.changed({"status": "resolved", "resolved_by": "alice"})
        assert resolved.status is IncidentStatus.RESOLVED and resolved.resolved_by == "alice"

        (paged,) = journal.deliveries_of(incident_id)
        assert isinstance(paged, DeliveryRecord) and paged.status is DeliveryStatus.PENDING
        assert isinstance(paged.id, int) and paged.incident_id == incident_id
        assert isinstance(paged.attempts, int) and paged.level == 1
        assert journal.delivery(paged.id) == paged
        (loose,) = journal.loose_deliveries()
        assert loose.incident_id is None and loose.channel == "mail"
        assert journal.unsent_deliveries() == [paged, loose]
    finally:
        journal.close()


@pytest.mark.parametrize(
    ("table", "read"),
    [
        ("runs", lambda journal: journal.run("odd")),
        ("steps", lambda journal: journal.steps("odd")),
        ("incidents", lambda journal: journal.incidents(only_open=False)),
        ("deliveries", lambda journal: journal.loose_deliveries()),
    ],
)
def test_a_status_this_runbook_does_not_know_is_an_error(
    project: Project, table: str, read: Any
) -> None:
    rows = {
        "runs": {"id": "odd", "playbook": "p", "mode": "run", "started_at": AT, "status": "paused"},
        "steps": {"run_id": "odd", "seq": 1, "idx": 0, "name": "s", "status": "paused"},
        "incidents": {**_incident_row("odd"), "status": "paused"},
        "deliveries": {**_delivery_row(None, "log"), "status": "paused"},
    }
    journal = project.journal()
    try:
        journal.append([_insert(table, rows[table], "odd")])
        with pytest.raises(JournalError, match="status 'paused', which this runbook does not know"):
            read(journal)
    finally:
        journal.close()


def test_a_mode_this_runbook_does_not_know_is_an_error(project: Project) -> None:
    journal = project.journal()
    try:
        row = {"id": "odd", "playbook": "p", "mode": "later", "started_at": AT, "status": "ok"}
        journal.append([_insert("runs", row, "odd")])
        with pytest.raises(JournalError, match="run 'odd' has mode 'later'"):
            journal.runs()
    finally:
        journal.close()


def test_a_steps_fields_are_the_folded_columns() -> None:
    # The fold (runbook.journal.events) fills these; the record reads every one.
    extras = (
        "outside", "marker", "decision", "decided", "statements",
        "iteration", "item", "loop_items", "loop_changed", "undoes_iteration", "more",
    )  # fmt: skip
    names = [f.name for f in fields(StepRecord) if f.name not in extras]
    assert names == ["run_id", "seq", *STEP_COLUMNS]


def test_a_steps_optional_keys_are_shown_only_when_recorded() -> None:
    base: dict[str, Any] = {"run_id": "r", "seq": 1, **dict.fromkeys(STEP_COLUMNS)}
    plain = StepRecord.from_row({**base, "status": "ok"})
    assert plain.as_dict() == {**base, "status": "ok"}
    decided = StepRecord.from_row(
        {**base, "status": "unknown", "outside": True, "decision": "skip", "decided": "by me"}
    )
    shown = decided.as_dict()
    assert list(shown)[-3:] == ["outside", "decided", "decision"]
    assert StepRecord.from_row(shown) == decided


def test_a_loops_keys_are_shown_only_when_recorded() -> None:
    base: dict[str, Any] = {"run_id": "r", "seq": 1, **dict.fromkeys(STEP_COLUMNS)}
    plain = StepRecord.from_row({**base, "status": "ok"})
    assert plain.iteration is None and plain.loop_items is None and plain.undoes_iteration is None
    assert "iteration" not in plain.as_dict() and "item" not in plain.as_dict()
    # An iteration keeps its item, even a null one.
    iteration = StepRecord.from_row({**base, "status": "ok", "iteration": 2, "item": None})
    assert iteration.iteration == 2 and iteration.item is None
    assert iteration.as_dict() == {**base, "status": "ok", "iteration": 2, "item": None}
    assert StepRecord.from_row(iteration.as_dict()) == iteration
    summary = StepRecord.from_row(
        {**base, "status": "ok", "loop_items": ["a", "b"], "loop_changed": "b added"}
    )
    assert summary.loop_items == ["a", "b"] and summary.loop_changed == "b added"
    assert summary.as_dict() == {
        **base, "status": "ok", "loop_items": ["a", "b"], "loop_changed": "b added"
    }  # fmt: skip
    undo = StepRecord.from_row({**base, "status": "ok", "undoes": 3, "undoes_iteration": 0})
    assert undo.undoes_iteration == 0 and undo.as_dict()["undoes_iteration"] == 0
    assert StepRecord.from_row(undo.as_dict()) == undo and undo.more == {}


def test_open_incidents_are_read_by_key(project: Project) -> None:
    """A run that passed its gates reads only those gates' open incidents (a
    fleet's thousand targets each read their own, not every open one)."""
    journal = project.journal()
    try:
        journal.append(
            [
                _insert("incidents", _incident_row("p/g/db1")),
                _insert("incidents", _incident_row("p/g/db2")),
                _insert("incidents", _incident_row("p/g/db3", status="resolved")),
            ]
        )
        keys = {"p/g/db2", "p/g/db3", "p/g/nowhere", "it's %s; -- *"}
        assert [i.key for i in journal.incidents(only_open=True, keys=keys)] == ["p/g/db2"]
        found = journal.incidents(only_open=False, keys=keys)
        assert [i.key for i in found] == ["p/g/db3", "p/g/db2"]
        assert journal.incidents(only_open=True, keys=set()) == []
        assert len(journal.incidents(only_open=True)) == 2
        assert len(journal.incidents(only_open=True, playbook="p")) == 2
        assert journal.incidents(only_open=True, playbook="q") == []
    finally:
        journal.close()
