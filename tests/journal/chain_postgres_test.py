"""The PostgreSQL journal's journal-wide chain, extended by the server
(extend_chain, migration 7) in each append's last statement: many writers at
once, alerting and run ends in one batch, a failure in it, and a journal at
schema version 6 upgraded.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from runbook.journal import hashing, migrate
from runbook.journal import postgres_rows as rows
from runbook.journal.checkpoint import generate
from runbook.journal.events import Conflict, checkpoint_request
from runbook.journal.postgres import PostgresStore
from runbook.journal.store import StoreConfig, verify_journal

from ..conftest import PgServer, Project, url_dsn

AT = "2026-01-01T00:00:00Z"
Event = tuple[str, str | None, str, dict[str, Any]]


@pytest.fixture
def pg_journal(pg_server: PgServer) -> Any:
    name = pg_server.create_database()
    yield url_dsn(pg_server.dsn_for(name))
    pg_server.drop_database(name)


def _config(dsn: str, key_file: Path | None = None) -> StoreConfig:
    return StoreConfig("postgresql", dsn=dsn, key_file=key_file)


def _start(run_id: str) -> Event:
    row = {"id": run_id, "playbook": "p", "mode": "run", "started_at": AT, "status": "running"}
    return (AT, run_id, "run.start", {"table": "runs", "op": "insert", "row": row})


def _step(run_id: str, seq: int) -> Event:
    row = {"run_id": run_id, "seq": seq, "status": "ok", "name": f"s{seq}"}
    return (AT, run_id, "step", {"table": "steps", "op": "insert", "row": row})


def _end(run_id: str) -> Event:
    row = {"id": run_id, "status": "ok", "ended_at": AT}
    return (AT, run_id, "run.end", {"table": "runs", "op": "update", "row": row})


def _incident(run_id: str) -> Event:
    row = {
        "key": f"gate:{run_id}",
        "severity": "warning",
        "status": "open",
        "opened_at": AT,
        "updated_at": AT,
        "last_run": run_id,
    }
    return (AT, run_id, "incident.open", {"table": "incidents", "op": "insert", "row": row})


def _delivery(run_id: str) -> Event:
    row = {
        "run_id": run_id,
        "channel": "log",
        "event": "opened",
        "status": "pending",
        "created_at": AT,
        "updated_at": AT,
    }
    return (AT, run_id, "delivery.planned", {"table": "deliveries", "op": "insert", "row": row})


def _rows(dsn: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query.encode(), params).fetchall()


def _assert_journal_wide_chain_whole(dsn: str, sealed: set[str]) -> None:
    """Positions 1…n without a gap, the head where its last event is, and
    each run in `sealed` sealed exactly once."""
    [(count, first, last)] = _rows(
        dsn, "SELECT count(*), min(pos), max(pos) FROM runbook.events WHERE stream = ''"
    )
    assert first == 1 and last == count
    [(length, head)] = _rows(dsn, "SELECT length, head FROM runbook.chains WHERE stream = ''")
    assert length == count
    assert _rows(
        dsn, "SELECT hash FROM runbook.events WHERE stream = '' AND pos = %s", (last,)
    ) == [(head,)]
    seals = _rows(
        dsn,
        "SELECT payload::json->'row'->>'run', count(*) FROM runbook.events"
        " WHERE stream = '' AND kind = 'run.sealed' GROUP BY 1",
    )
    assert {run for run, _ in seals} == sealed
    assert {n for _, n in seals} == {1}


def test_writers_and_stores_at_once_seal_every_run_once_on_one_chain(
    pg_journal: str, tmp_path: Path
) -> None:
    shared = PostgresStore(_config(pg_journal))  # the schema, made once; its writers shared
    key = tmp_path / "journal.pem"
    generate(key)
    errors: list[BaseException] = []
    runs = 20

    def through_writers(prefix: str) -> None:
        # A fleet's way: one store's writers, many runs' records in a batch.
        owner = object()
        writer = shared.writer()
        ticket = 0
        for n in range(runs):
            run_id = f"{prefix}-{n}"
            for event in (_start(run_id), _step(run_id, 1), _step(run_id, 2), _end(run_id)):
                ticket = writer.put(owner, [event])
        writer.wait(owner, ticket)

    def through_a_store(prefix: str, key_file: Path | None) -> None:
        # A run on another host: its own connection; alerting in its end's
        # batch, or (with the key) a signed checkpoint chained client-side.
        store = PostgresStore(_config(pg_journal, key_file))
        try:
            for n in range(runs):
                run_id = f"{prefix}-{n}"
                store.append([_start(run_id), _step(run_id, 1)])
                store.append([_step(run_id, 2)])
                extra = [checkpoint_request(AT)] if key_file else [_incident(run_id)]
                store.append([_end(run_id), *extra])
        finally:
            store.close()

    def guarded(target: Any, *args: Any) -> None:
        try:
            target(*args)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [(through_writers, (f"w{i}",)) for i in range(5)]
    workers += [(through_a_store, (f"s{i}", None)) for i in range(2)]
    workers += [(through_a_store, ("k0", key))]
    threads = [threading.Thread(target=guarded, args=(t, *a)) for t, a in workers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
        assert errors == []
        assert all(not thread.is_alive() for thread in threads)
    finally:
        shared.close()
    every = {
        f"{p}-{n}" for p in ("w0", "w1", "w2", "w3", "w4", "s0", "s1", "k0") for n in range(runs)
    }
    _assert_journal_wide_chain_whole(pg_journal, every)
    [(checkpoints,)] = _rows(
        pg_journal, "SELECT count(*) FROM runbook.events WHERE kind = 'checkpoint'"
    )
    assert checkpoints == runs
    assert verify_journal(_config(pg_journal)).problems == []


def test_alerting_and_run_ends_in_one_batch_chain_as_the_client_would(pg_journal: str) -> None:
    store = PostgresStore(_config(pg_journal))
    try:
        store.append([_start("a"), _start("b")])
        rowids = store.append(
            [_step("a", 1), _incident("a"), _end("a"), _delivery("a"), _end("b"), _incident("b")]
        )
        assert len(rowids) == 3  # two incidents' ids and a delivery's
        wide = _rows(
            pg_journal,
            "SELECT pos, at, run_id, kind, payload, prev_hash, hash FROM runbook.events"
            " WHERE stream = '' ORDER BY pos",
        )
        kinds = [kind for _, _, _, kind, _, _, _ in wide]
        assert kinds == [
            "incident.open",
            "delivery.planned",
            "incident.open",
            "run.sealed",
            "run.sealed",
        ]
        # The server's hashes are hashing.chain's, over the client's digests.
        prev = hashing.GENESIS
        for pos, at, run_id, kind, payload, prev_hash, stored in wide:
            assert prev_hash == prev, pos
            prev = hashing.chain(prev, hashing.record_digest(at, run_id, kind, payload))
            assert stored == prev, pos
        # Each seal holds its run's chain as it ended.
        for run_id, (_, _, _, _, payload, _, _) in zip(("a", "b"), wide[3:], strict=True):
            [(length, head)] = _rows(
                pg_journal, "SELECT length, head FROM runbook.chains WHERE stream = %s", (run_id,)
            )
            assert f'"head":"{head}","length":{length},"run":"{run_id}"' in payload
        assert store.verify() == []
        _assert_journal_wide_chain_whole(pg_journal, {"a", "b"})
    finally:
        store.close()


def test_a_batch_larger_than_a_statement_takes_goes_in_parts_and_verifies(
    pg_journal: str,
) -> None:
    # More runs than ROWS_A_STATEMENT in one append: their chains locked,
    # their events inserted, their heads moved and their seals chained part
    # after part. Names that sort apart by bytes and by a locale's rules.
    many = 2 * rows.ROWS_A_STATEMENT + 37
    names = [f"run-{n:03d}" for n in range(many)] + ["B", "a", "Ärger", "z", "_x"]
    store = PostgresStore(_config(pg_journal))
    try:
        store.append([_start(name) for name in names])
        store.append([e for name in names for e in (_step(name, 1), _step(name, 2), _end(name))])
        assert store.verify() == []
    finally:
        store.close()
    _assert_journal_wide_chain_whole(pg_journal, set(names))
    lengths = dict(
        _rows(pg_journal, "SELECT stream, length FROM runbook.chains WHERE stream <> ''")
    )
    assert lengths == {name: 4 for name in names}
    assert verify_journal(_config(pg_journal)).problems == []


def test_a_failure_in_the_servers_chaining_rolls_back_the_whole_append(pg_journal: str) -> None:
    store = PostgresStore(_config(pg_journal))
    try:
        store.append([_start("a"), _start("b"), _end("b")])  # the journal-wide chain: 1 seal
        # Someone's event at the position the next seal takes: its insert fails.
        with psycopg.connect(pg_journal) as conn:
            conn.execute(
                "INSERT INTO runbook.events (stream, pos, at, kind, payload, prev_hash, hash)"
                " VALUES ('', 2, %s, 'stray', '{}', '', '')",
                (AT,),
            )
        with pytest.raises(Conflict, match="events"):
            store.append([_step("a", 1), _end("a"), _incident("a")])
        # Nothing of it is written: the run's step and end, the incident.
        assert store.steps("a") == []
        run = store.run("a")
        assert run is not None and run.status.value == "running"
        assert store.incidents(only_open=True) == []
        assert _rows(pg_journal, "SELECT length FROM runbook.chains WHERE stream = 'a'") == [(1,)]
        assert _rows(pg_journal, "SELECT length FROM runbook.chains WHERE stream = ''") == [(1,)]
        # The connection goes on: an append that leaves the journal-wide chain alone.
        store.append([_step("a", 1)])
        assert [s.name for s in store.steps("a")] == ["s1"]
    finally:
        store.close()


def test_a_journal_at_schema_version_6_verifies_then_is_upgraded(
    project: Project, pg_journal: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A journal as runbook wrote it at version 6: one of today's, migration 7 taken away.
    store = PostgresStore(_config(pg_journal))
    try:
        store.append([_start("old"), _step("old", 1), _end("old"), _incident("old")])
    finally:
        store.close()
    with psycopg.connect(pg_journal, autocommit=True) as conn:
        conn.execute("DROP FUNCTION runbook.extend_chain")
        conn.execute("UPDATE runbook.meta SET value = '6' WHERE key = 'schema_version'")
    assert verify_journal(_config(pg_journal)).problems == []

    monkeypatch.setenv("RUNBOOK_JOURNAL", pg_journal)
    upgraded = project.run("journal", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert f"schema version {migrate.latest_version()} (applied migration(s) 7)" in upgraded.stdout

    store = PostgresStore(_config(pg_journal))
    try:
        store.append([_start("new"), _end("new"), _incident("new")])
        assert store.verify() == []
    finally:
        store.close()
    _assert_journal_wide_chain_whole(pg_journal, {"old", "new"})
    [(version,)] = _rows(pg_journal, "SELECT value FROM runbook.meta WHERE key = 'schema_version'")
    assert int(version) == migrate.latest_version() == 7


def test_an_append_waits_for_the_journal_wide_chain_only_in_its_last_statement(
    pg_journal: str,
) -> None:
    store = PostgresStore(_config(pg_journal))
    holder = psycopg.connect(pg_journal)  # a transaction left open: it holds the lock
    try:
        store.append([_start("a"), _start("b"), _end("b")])
        holder.execute("SELECT 1 FROM runbook.chains WHERE stream = '' FOR UPDATE")
        errors: list[BaseException] = []

        def end_a() -> None:
            try:
                store.append([_step("a", 1), _end("a")])
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        appending = threading.Thread(target=end_a)
        appending.start()
        waiting: list[tuple[Any, ...]] = []
        for _ in range(200):
            waiting = _rows(
                pg_journal,
                "SELECT query FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()",
            )
            if waiting:
                break
            appending.join(0.05)
        # What waits is extend_chain: the run's own events went before it,
        # the client's round trips and hashing done without the lock.
        assert len(waiting) == 1 and "extend_chain" in waiting[0][0]
        holder.rollback()
        appending.join(30)
        assert errors == [] and not appending.is_alive()
        assert store.verify() == []
        _assert_journal_wide_chain_whole(pg_journal, {"a", "b"})
    finally:
        holder.close()
        store.close()
