"""The group-commit writer: one per store, shared by the runs on it (a fleet's
targets), each run's errors its own."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from runbook.clock import Clock
from runbook.errors import JournalError
from runbook.journal import recorder as recorder_module
from runbook.journal.recorder import Recorder, process_started
from runbook.journal.sqlite import Journal
from runbook.journal.verify import verify_file
from runbook.redact import Redactor


def _event(run_id: str, row: dict[str, object]) -> tuple[str, str, str, dict[str, object]]:
    return (
        "2026-12-04T00:00:00Z",
        run_id,
        "run.start",
        {"table": "runs", "op": "insert", "row": row},
    )


def _run_row(run_id: str) -> dict[str, object]:
    return {
        "id": run_id,
        "playbook": "p",
        "target": "t",
        "status": "running",
        "mode": "run",
        "started_at": "2026-12-04T00:00:00Z",
    }


def test_the_runs_on_a_store_share_one_writer_thread_and_connection(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    try:
        recorders = [Recorder(journal, Redactor(), Clock()) for _ in range(20)]
        assert len({id(r._writer) for r in recorders}) == 1
        for i, r in enumerate(recorders):
            r._append([_event(f"run{i}", _run_row(f"run{i}"))], durable=i % 2 == 0)
        for r in recorders:
            r.close()
        writers = [t for t in threading.enumerate() if t.name == "runbook-journal"]
        assert len(writers) <= 1
        assert len(journal.query("SELECT id FROM runs")) == 20
    finally:
        journal.close()
    assert not [t for t in threading.enumerate() if t.name == "runbook-journal"]
    report = verify_file(tmp_path / "j.sqlite")
    assert report.problems == [] and report.count == 20


def test_records_that_cannot_be_written_fail_their_own_run_only(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    try:
        good, bad = Recorder(journal, Redactor(), Clock()), Recorder(journal, Redactor(), Clock())
        good._append([_event("good", _run_row("good"))])
        bad._append([_event("good", _run_row("good"))])  # the same id again: refused
        with pytest.raises(JournalError):
            bad.flush()
        good.flush()  # written, though it shared a batch with the refused record
        assert [row["id"] for row in journal.query("SELECT id FROM runs")] == ["good"]
        good.close()
        bad.close()
    finally:
        journal.close()


def test_the_process_start_time_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    first = process_started(os.getpid())
    reads: list[int] = []
    monkeypatch.setattr(recorder_module, "_read_started", lambda pid: reads.append(pid))
    assert process_started(os.getpid()) == first
    assert reads == []
    process_started(os.getppid())  # another process: read each time
    assert reads == [os.getppid()]


def test_the_journal_schema_is_set_at_connect_time_whatever_its_name(db: str) -> None:
    from runbook.journal.migrate import connect
    from runbook.journal.store import StoreConfig

    for schema in ("runbook", 'odd "schema"\twith\\ space'):
        conn = connect(StoreConfig("postgresql", dsn=db, schema=schema))
        try:
            row = conn.execute("SELECT current_schemas(false), current_setting('search_path')")
            quoted = '"' + schema.replace('"', '""') + '"'
            assert row.fetchone()[1] == quoted  # type: ignore[index]
        finally:
            conn.close()
    # A DSN's own options are kept (the search_path is then SET).
    conn = connect(StoreConfig("postgresql", dsn=f"{db} options='-c work_mem=7MB'", schema="x"))
    try:
        assert conn.execute("SHOW work_mem").fetchone() == ("7MB",)
        assert conn.execute("SHOW search_path").fetchone() == ("x",)
    finally:
        conn.close()
