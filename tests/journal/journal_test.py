"""The journal: append-only, hash-chained, tamper-evident, crash-aware."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from runbook.clock import Clock
from runbook.journal import reconcile
from runbook.journal.sqlite import SCHEMA_VERSION, Journal
from runbook.outcome import RunStatus, Status

from ..conftest import Project


def _run(project: Project) -> None:
    book = project.playbook(
        "name: j\nkind: check\nsteps:\n  - {name: One, query: SELECT 1}\n  - {name: Two, query: SELECT 2}\n"
    )
    assert project.run("run", str(book)).exit_code == 0


def test_schema_is_versioned(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    assert journal.query("SELECT value FROM meta WHERE key = 'schema_version'") == [
        {"value": str(SCHEMA_VERSION)}
    ]
    journal.close()
    Journal(tmp_path / "j.sqlite").close()  # opening again migrates nothing


def test_a_current_journal_opens_while_another_process_writes(tmp_path: Path) -> None:
    Journal(tmp_path / "j.sqlite").close()
    writer = sqlite3.connect(tmp_path / "j.sqlite", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a run's group commit, say, holding the write lock
    try:
        # Opening takes no write lock when there is nothing to migrate: it
        # neither waits for the writer nor fails.
        journal = Journal(tmp_path / "j.sqlite")
        assert journal.query("SELECT count(*) AS n FROM runs") == [{"n": 0}]
        journal.close()
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Journal(tmp_path / "j.sqlite").close()
    db = sqlite3.connect(tmp_path / "j.sqlite")
    db.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    import pytest

    from runbook.errors import JournalError

    with pytest.raises(JournalError, match="schema version 999"):
        Journal(tmp_path / "j.sqlite")


@pytest.mark.sqlite_only  # edits the file; postgres_test.py does it there
def test_chain_verifies_and_edits_are_detected(project: Project) -> None:
    _run(project)
    journal = project.journal()
    assert journal.verify() == []
    journal.close()
    db = sqlite3.connect(project.root / ".runbook" / "journal.sqlite")
    # Rewriting history: a step said ok becomes something else in the events…
    seq = db.execute("SELECT seq FROM events WHERE kind = 'step.end' LIMIT 1").fetchone()[0]
    db.execute(
        'UPDATE events SET payload = replace(payload, \'"status":"ok"\', \'"status":"failed"\') WHERE seq = ?',
        (seq,),
    )
    # …and a run's status in its table.
    db.execute("UPDATE runs SET status = 'failed'")
    db.commit()
    db.close()
    problems = project.journal().verify()
    assert any("content does not match its hash" in p for p in problems)
    assert any("column status differs" in p for p in problems)


@pytest.mark.sqlite_only  # edits the file; postgres_test.py does it there
def test_deleting_an_event_breaks_the_chain(project: Project) -> None:
    _run(project)
    db = sqlite3.connect(project.root / ".runbook" / "journal.sqlite")
    db.execute("DELETE FROM events WHERE seq = 2")
    db.commit()
    db.close()
    assert any("chain broken" in p for p in project.journal().verify())


def test_dead_run_is_marked_interrupted_at_its_step(project: Project) -> None:
    _run(project)
    journal = project.journal()
    run = journal.run(journal.query("SELECT id FROM runs")[0]["id"])
    assert run is not None
    # Fake a run left `running` by a process that no longer exists.
    journal.append(
        [
            ("2026-01-01T00:00:00.000Z", "dead", "run.start", {"table": "runs", "op": "insert", "row": {
                "id": "dead", "playbook": "j", "mode": "run", "started_at": "2026-01-01T00:00:00.000Z",
                "status": "running", "host": __import__("socket").gethostname(), "pid": 2**22 + 7}}),
            ("2026-01-01T00:00:00.000Z", "dead", "step.start", {"table": "steps", "op": "insert", "row": {
                "run_id": "dead", "seq": 1, "idx": 0, "number": "1", "name": "Long one", "status": "running",
                "started_at": "2026-01-01T00:00:05.000Z"}}),
        ]
    )  # fmt: skip
    assert reconcile.mark_dead_runs(journal, Clock()) == ["dead"]  # found gone months later
    dead = journal.run("dead")
    assert dead is not None and dead.status is RunStatus.INTERRUPTED and dead.exit_code == 130
    assert "during step 1 'Long one'" in (dead.reason or "")
    assert dead.steps is not None and dead.steps[0].status is Status.FAILED
    # It ends when it was last seen alive (the step's start), not when it was
    # found gone: its duration is not months.
    assert dead.ended_at == dead.steps[0].ended_at == "2026-01-01T00:00:05.000Z"
    assert journal.verify() == []
    assert reconcile.mark_dead_runs(journal, Clock()) == []  # once only
    journal.close()


@pytest.mark.sqlite_only  # edits the file; postgres_test.py does it there
def test_journal_verify_command(project: Project) -> None:
    _run(project)
    result = project.run("journal", "verify")
    assert result.exit_code == 0 and "0 problem(s)" in result.stdout
    db = sqlite3.connect(project.root / ".runbook" / "journal.sqlite")
    db.execute("UPDATE runs SET exit_code = 0, status = 'ok' WHERE 1")
    db.execute("UPDATE events SET hash = 'x' WHERE seq = 1")
    db.commit()
    db.close()
    result = project.run("journal", "verify")
    assert result.exit_code == 1 and "content does not match its hash" in result.stdout


def _run_row(run_id: str) -> dict[str, object]:
    row = {"id": run_id, "playbook": "p", "mode": "check", "started_at": "now", "status": "ok"}
    return {"table": "runs", "op": "insert", "row": row}


def test_two_threads_share_one_journal(tmp_path: Path) -> None:
    # The notifier's delivery thread writes the journal while the run writes it.
    journal = Journal(tmp_path / "journal.sqlite")
    errors: list[BaseException] = []

    def write(run: str) -> None:
        try:
            for n in range(300):
                journal.append([("2026-11-23T08:00:00Z", run, "note", _run_row(f"{run}-{n}"))])
                journal.query("SELECT count(*) AS n FROM runs")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(name,)) for name in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert journal.query("SELECT count(*) AS n FROM runs") == [{"n": 900}]
    assert journal.verify() == []


def test_any_value_a_step_can_hold_is_recorded_and_verifies(tmp_path: Path) -> None:
    """Records are encoded by orjson; what it refuses (integers past 64 bits) by json."""
    journal = Journal(tmp_path / "j.sqlite")
    values = {"big": 2**70, "text": "Zürich ✓ \u2028", "nested": {"1": [1.5, None, True]}}
    journal.append(
        [
            ("2026-01-01T00:00:00.000Z", "r", "step.start", {"table": "steps", "op": "insert", "row": {
                "run_id": "r", "seq": 1, "idx": 0, "number": "1", "name": "ü", "status": "running"}}),
            ("2026-01-01T00:00:00.001Z", "r", "step.end", {"table": "steps", "op": "update", "row": {
                "run_id": "r", "seq": 1, "status": "ok", "params": [values["big"]], "result": values}}),
        ]
    )  # fmt: skip
    (step,) = journal.steps("r")
    assert step.name == "ü" and step.status is Status.OK
    assert step.params == [2**70] and step.result == values
    assert journal.verify() == []
    journal.close()


def test_records_hold_what_the_standard_encoder_would_write() -> None:
    """orjson writes the journal; dates, decimals and the like read back as json's str() of them."""
    import dataclasses
    import datetime
    import decimal
    import json

    from runbook.journal.events import dumps as _dumps

    @dataclasses.dataclass
    class Pair:
        a: int

    value = {
        "at": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "day": datetime.date(2026, 1, 2),
        "pair": Pair(1),
        "amount": decimal.Decimal("1.50"),
        1: "non-string key",
        "text": "Zürich",
    }
    assert json.loads(_dumps(value)) == json.loads(json.dumps(value, default=str))
    # The one difference: NaN (never valid JSON) is recorded as null.
    assert json.loads(_dumps({"nan": float("nan")})) == {"nan": None}


def test_many_threads_opening_a_new_journal_at_once_all_get_it(tmp_path: Path) -> None:
    # Switching a new file to WAL can answer "database is locked" without waiting.
    path = tmp_path / "fresh" / "journal.sqlite"
    start = threading.Barrier(8)
    failures: list[BaseException] = []

    def open_and_write(n: int) -> None:
        start.wait()
        try:
            journal = Journal(path)
            try:
                journal.append(
                    [
                        (
                            "2026-01-01T00:00:00Z",
                            None,
                            "test",
                            {
                                "table": "steps",
                                "op": "insert",
                                "row": {"run_id": f"r{n}", "seq": 1},
                            },
                        )
                    ]
                )
            finally:
                journal.close()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=open_and_write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    journal = Journal(path)
    try:
        assert len(journal.query("SELECT seq FROM events")) == 8
        assert journal.verify() == []
    finally:
        journal.close()
