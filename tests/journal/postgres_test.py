"""The PostgreSQL journal: append-only, a chain per run sealed journal-wide,
many writers at once, migrations, `journal upgrade` and `journal copy`.

(The journal's, the alerts' and the crash tests also run on this backend:
tests/conftest.py parametrizes them.)
"""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from runbook.journal.events import TABLES
from runbook.journal.migrate import migrations
from runbook.journal.postgres import PostgresStore
from runbook.journal.store import StoreConfig, open_store

from ..conftest import PgServer, Project, url_dsn

BOOK = """name: two
kind: change
steps:
  - name: one
    sql: SELECT 1 AS n
  - name: two
    sql: SELECT 2 AS n
"""


@pytest.fixture
def pg_journal(pg_server: PgServer) -> Any:
    name = pg_server.create_database()
    yield url_dsn(pg_server.dsn_for(name))
    pg_server.drop_database(name)


def _config(dsn: str) -> StoreConfig:
    return StoreConfig("postgresql", dsn=dsn)


def _run_row(run_id: str, status: str = "running") -> dict[str, Any]:
    return {
        "id": run_id,
        "playbook": "p",
        "mode": "run",
        "started_at": "2026-01-01T00:00:00Z",
        "status": status,
    }


def _write_runs(dsn: str, prefix: str, count: int) -> None:
    """`count` runs of two steps each, as a recorder writes them."""
    store = open_store(_config(dsn))
    try:
        for n in range(count):
            run_id = f"{prefix}-{n}"
            at = "2026-01-01T00:00:00Z"
            store.append(
                [
                    (
                        at,
                        run_id,
                        "run.start",
                        {"table": "runs", "op": "insert", "row": _run_row(run_id)},
                    )
                ]
            )
            for seq in (1, 2):
                step = {"run_id": run_id, "seq": seq, "status": "ok", "name": f"s{seq}"}
                store.append(
                    [(at, run_id, "step", {"table": "steps", "op": "insert", "row": step})]
                )
            end = {"id": run_id, "status": "ok", "ended_at": at}
            store.append([(at, run_id, "run.end", {"table": "runs", "op": "update", "row": end})])
    finally:
        store.close()


def _rows(dsn: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query.encode(), params).fetchall()


def _count(dsn: str, query: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def test_events_are_append_only(pg_journal: str) -> None:
    _write_runs(pg_journal, "r", 1)
    for statement in (
        "UPDATE runbook.events SET payload = '{}'",
        "DELETE FROM runbook.events",
        "TRUNCATE runbook.events",
    ):
        with psycopg.connect(pg_journal) as conn, pytest.raises(psycopg.Error) as caught:
            conn.execute(statement)
        assert "append-only" in str(caught.value)


def test_many_threads_and_processes_write_at_once_and_lose_nothing(pg_journal: str) -> None:
    PostgresStore(_config(pg_journal)).close()  # the schema, made once
    threads = [
        threading.Thread(target=_write_runs, args=(pg_journal, f"t{i}", 15)) for i in range(4)
    ]
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_write_runs, args=(pg_journal, f"p{i}", 15)) for i in range(2)
    ]
    for worker in [*threads, *processes]:
        worker.start()
    for thread in threads:
        thread.join(120)
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    assert _count(pg_journal, "SELECT count(*) FROM runbook.runs") == 90
    assert _count(pg_journal, "SELECT count(*) FROM runbook.runs WHERE status = 'ok'") == 90
    # Each run has its own chain of four events; each ended run is sealed once.
    assert _count(pg_journal, "SELECT count(DISTINCT stream) FROM runbook.events") == 91
    seals = "SELECT count(*) FROM runbook.events WHERE kind = 'run.sealed'"
    assert _count(pg_journal, seals) == 90
    store = open_store(_config(pg_journal))
    try:
        assert store.verify() == []
        assert [s.name for s in store.steps("p1-14")] == ["s1", "s2"]
    finally:
        store.close()


def test_a_new_journal_opened_by_many_at_once_is_migrated_once(pg_journal: str) -> None:
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            PostgresStore(_config(pg_journal)).close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    version = _count(pg_journal, "SELECT value::int FROM runbook.meta WHERE key = 'schema_version'")
    assert version == max(migrations())


def _tamper(dsn: str, statement: str) -> None:
    """What someone who owns the tables can do: the trigger off, then an edit."""
    with psycopg.connect(dsn) as conn:
        conn.execute("ALTER TABLE runbook.events DISABLE TRIGGER USER")
        conn.execute(statement)
        conn.execute("ALTER TABLE runbook.events ENABLE TRIGGER USER")


def test_the_cli_runs_records_and_reads_back_a_postgresql_journal(
    project: Project, pg_journal: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNBOOK_JOURNAL", pg_journal)
    project.playbook(BOOK)
    result = project.run("run", "playbooks/p.yaml")
    assert result.exit_code == 0, result.output
    assert "schema runbook" in result.output
    history = project.run("history")
    assert "two" in history.stdout and "ok" in history.stdout
    run_id = history.stdout.split()[0]
    shown = project.run("show", run_id)
    assert "SELECT 2 AS n" in shown.stdout
    verified = project.run("journal", "verify")
    assert verified.exit_code == 0 and "0 problem(s)" in verified.stdout
    assert project.run("journal", "upgrade").stdout.endswith("(up to date)\n")

    # A run's last event cut off after it ended: its seal no longer matches.
    _tamper(
        pg_journal,
        "DELETE FROM runbook.events WHERE stream <> '' AND pos ="
        " (SELECT max(pos) FROM runbook.events WHERE stream <> '')",
    )
    verified = project.run("journal", "verify")
    assert verified.exit_code == 1
    assert f"run {run_id}: sealed with" in verified.stdout


def test_an_edited_step_and_a_recomputed_chain_are_caught(
    project: Project, pg_journal: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNBOOK_JOURNAL", pg_journal)
    project.playbook(BOOK)
    assert project.run("run", "playbooks/p.yaml").exit_code == 0
    _tamper(
        pg_journal,
        "UPDATE runbook.events SET payload = replace(payload, 'SELECT 2', 'SELECT 3') WHERE stream <> ''",
    )
    problems = open_store(_config(pg_journal)).verify()
    assert any("content does not match its hash" in p for p in problems)


def test_a_signed_checkpoint_covers_the_journal_wide_chain(
    project: Project, pg_journal: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RUNBOOK_JOURNAL", pg_journal)
    key = tmp_path / "keys" / "journal.pem"
    assert project.run("journal", "keygen", "--out", str(key)).exit_code == 0
    monkeypatch.setenv("RUNBOOK_JOURNAL_KEY_FILE", str(key))
    project.playbook(BOOK)
    assert project.run("run", "playbooks/p.yaml").exit_code == 0
    taken = project.run("journal", "checkpoint")
    assert taken.exit_code == 0 and '"signature"' in taken.stdout
    checkpoint = tmp_path / "cp.json"
    checkpoint.write_text(taken.stdout)
    verified = project.run("journal", "verify", "--checkpoint", str(checkpoint))
    assert verified.exit_code == 0, verified.output
    assert "the signature holds" in verified.stdout
    # The journal-wide chain cut back: the checkpoint kept elsewhere shows it.
    _tamper(pg_journal, "DELETE FROM runbook.events WHERE stream = ''")
    verified = project.run("journal", "verify", "--checkpoint", str(checkpoint))
    assert verified.exit_code == 1 and "cut-off tail" in verified.stdout


def test_journal_copy_moves_a_sqlite_journal_once_and_verifies(
    project: Project, pg_journal: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNBOOK_JOURNAL", raising=False)
    project.playbook(BOOK)
    project.playbook(BOOK.replace("SELECT 2 AS n", "SELECT 1/0 AS n"), "bad.yaml")
    assert project.run("run", "playbooks/p.yaml").exit_code == 0
    assert project.run("run", "playbooks/bad.yaml").exit_code == 3
    first = project.run("journal", "copy", "--to", pg_journal)
    assert first.exit_code == 0, first.output
    assert "the copy verifies with 0 problem(s)" in first.stdout
    second = project.run("journal", "copy", "--to", pg_journal)
    assert second.exit_code == 0 and "copied 0 of" in second.stdout
    sqlite_runs = project.runs()
    monkeypatch.setenv("RUNBOOK_JOURNAL", pg_journal)
    copied = open_store(_config(pg_journal))
    try:
        runs = [copied.run(r.id) for r in reversed(copied.runs())]
        assert [run.as_dict() for run in runs if run is not None] == sqlite_runs
    finally:
        copied.close()
    # The copy is a journal like any other: runs go on in it.
    assert project.run("run", "playbooks/p.yaml").exit_code == 0
    assert project.run("journal", "verify").exit_code == 0


def test_an_inventory_postgresql_journal_without_a_dsn_is_refused_with_its_place(
    project: Project,
) -> None:
    inventory = project.root / "inventory.yaml"
    inventory.write_text(inventory.read_text() + "journal:\n  backend: postgresql\n")
    result = project.run("validate")
    assert result.exit_code == 2
    assert "inventory.yaml:" in result.output and "needs a dsn" in result.output
    inventory.write_text(inventory.read_text().replace("backend: postgresql", "schema: ops"))
    result = project.run("validate")
    assert result.exit_code == 2 and "schema is for backend postgresql" in result.output


@pytest.mark.slow
def test_dsn_embedded_keeps_the_journal_on_the_projects_embedded_server(project: Project) -> None:
    inventory = project.root / "inventory.yaml"
    inventory.write_text(
        inventory.read_text() + "journal:\n  backend: postgresql\n  dsn: embedded\n"
    )
    project.playbook(BOOK)
    try:
        result = project.run("run", "playbooks/p.yaml")
        assert result.exit_code == 0, result.output
        assert "runbook_journal" in result.output
        assert "two" in project.run("history").stdout
        assert project.run("journal", "verify").exit_code == 0
    finally:
        project.run("sandbox", "down")


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://ops:s3cret@db.example/journal",
        "host=db.example user=ops password=s3cret dbname=journal",
        "host=db.example password = 's3cret word' dbname=journal",
        "postgresql://ops@db.example/journal?password=s3cret",
    ],
)
def test_the_journal_is_named_without_its_password(dsn: str) -> None:
    where = StoreConfig("postgresql", dsn=dsn).where
    assert "s3cret" not in where and "db.example" in where


def test_an_unreachable_journal_is_an_error_that_names_it_without_its_password(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "RUNBOOK_JOURNAL", "postgresql://ops:s3cret@127.0.0.1:9/journal?connect_timeout=2"
    )
    project.playbook(BOOK)
    result = project.run("run", "playbooks/p.yaml")
    assert result.exit_code != 0
    assert "cannot open the journal postgresql://ops:***@127.0.0.1:9/journal" in result.output
    assert "s3cret" not in result.output and "Traceback" not in result.output


def test_an_export_of_one_run_verifies_against_the_checkpoint_alone(
    project: Project, pg_journal: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RUNBOOK_JOURNAL", pg_journal)
    key = tmp_path / "keys" / "journal.pem"
    assert project.run("journal", "keygen", "--out", str(key)).exit_code == 0
    monkeypatch.setenv("RUNBOOK_JOURNAL_KEY_FILE", str(key))
    project.playbook(BOOK)
    for _ in range(3):
        assert project.run("run", "playbooks/p.yaml").exit_code == 0
    kept = tmp_path / "cp.json"
    kept.write_text(project.run("journal", "checkpoint").stdout)
    store = open_store(_config(pg_journal))
    middle = [r.id for r in reversed(store.runs())][1]
    store.close()
    result = project.run("journal", "export", middle, "--checkpoint", str(kept))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["runs"] == [middle] and list(doc["chains"]) == [middle]
    assert all(set(e) == {"seq", "digest"} for e in doc["events"] if "payload" not in e)
    exported = tmp_path / "export.json"
    exported.write_text(result.stdout)
    public = key.with_name(key.name + ".pub")
    args = ("--export", str(exported), "--checkpoint", str(kept), "--public-key", str(public))
    # Another machine, no journal: only the export, the checkpoint and the public key.
    monkeypatch.delenv("RUNBOOK_JOURNAL")
    verified = project.run("journal", "verify", *args)
    assert verified.exit_code == 0, verified.output
    assert "the signature holds" in verified.stdout
    # A step's status changed in the export: its run no longer matches its seal.
    for event in doc["chains"][middle]:
        row = event["payload"].get("row", {})
        if row.get("status") == "ok":
            row["status"] = "failed"
            break
    exported.write_text(json.dumps(doc))
    verified = project.run("journal", "verify", *args)
    assert verified.exit_code == 1 and "differ from its seal" in verified.stdout


def test_every_run_with_the_key_ends_in_a_signed_checkpoint(
    project: Project, pg_journal: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RUNBOOK_JOURNAL", pg_journal)
    key = tmp_path / "keys" / "journal.pem"
    assert project.run("journal", "keygen", "--out", str(key)).exit_code == 0
    monkeypatch.setenv("RUNBOOK_JOURNAL_KEY_FILE", str(key))
    project.playbook(BOOK)
    store = open_store(_config(pg_journal))
    try:
        for runs in (1, 2):
            assert project.run("run", "playbooks/p.yaml").exit_code == 0
            found = store.latest_checkpoint()
            # Each run's seal, then its checkpoint: the journal-wide chain so far.
            assert found is not None and found[1]["count"] == 2 * runs - 1
        assert store.verify() == []
    finally:
        store.close()


def _planned(run_id: str | None, note: str) -> tuple[str, str | None, str, dict[str, Any]]:
    row = {
        "run_id": run_id,
        "channel": "log",
        "event": "opened",
        "status": "pending",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    change = {"table": "deliveries", "op": "insert", "row": row, "note": {"text": note}}
    return ("2026-01-01T00:00:00Z", run_id, "delivery.planned", change)


def test_a_planned_note_is_found_for_a_run_and_for_no_run(pg_journal: str) -> None:
    store = PostgresStore(_config(pg_journal))
    try:
        store.append([(_AT, "r1", "run.start", _start("r1"))])
        [of_run, of_none] = store.append([_planned("r1", "for r1"), _planned(None, "for none")])
        assert store.planned_note("r1", of_run) == {"text": "for r1"}
        assert store.planned_note(None, of_none) == {"text": "for none"}
        assert store.planned_note(None, of_run) is None
        assert store.planned_note("r1", of_none) is None
    finally:
        store.close()


_AT = "2026-01-01T00:00:00Z"


def _start(run_id: str) -> dict[str, Any]:
    return {"table": "runs", "op": "insert", "row": _run_row(run_id)}


def test_an_update_of_a_mirrored_row_finds_it_by_its_key_index(pg_journal: str) -> None:
    # IS NOT DISTINCT FROM on the key used no index: every run's end scanned
    # every run the journal ever held. With sequential scans priced out, any
    # plan that still scans has no index to use.
    store = PostgresStore(_config(pg_journal))
    try:
        for table, keys in TABLES.items():
            [(other,)] = _rows(
                pg_journal,
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'runbook'"
                " AND table_name = %s AND NOT column_name = ANY(%s) ORDER BY ordinal_position"
                " LIMIT 1",
                (table, list(keys)),
            )
            columns = (*keys, str(other))
            for expected in ((), (str(other),)):
                text = store._statement(table, "update", columns, expected)
                values = ["1"] * (len(columns) + len(expected))
                with psycopg.connect(pg_journal) as conn:
                    conn.execute("SET search_path TO runbook")
                    conn.execute("SET enable_seqscan = off")
                    with psycopg.RawCursor(conn) as cur:  # the text's $n placeholders
                        cur.execute(b"EXPLAIN " + text, values)
                        plan = "\n".join(str(r[0]) for r in cur.fetchall())
                assert "Seq Scan" not in plan, (table, plan)
                assert "Index" in plan, (table, plan)
    finally:
        store.close()
