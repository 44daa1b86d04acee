"""The scheduler's tables in the journal, on both backends: the fire ledger and
pauses written as events (a fire's id claims its slot once), heartbeats
upserted outside the chain, what `journal verify` makes of them, and older
journals brought up to date."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from runbook.journal import migrate
from runbook.journal.events import Conflict
from runbook.journal.records import FireRecord, FireStatus, HeartbeatRecord, PauseRecord
from runbook.journal.sqlite import Journal
from runbook.journal.sqlite_schema import SCHEMA_VERSION
from runbook.journal.store import JournalStore, StoreConfig, open_store, verify_journal

from ..conftest import PgServer, Project

AT = "2026-11-23T08:00:00.000Z"
BOOK = "playbooks/nightly.yaml"


@pytest.fixture
def config(tmp_path: Path, journal_dsn: str | None) -> StoreConfig:
    if journal_dsn is None:
        return StoreConfig("sqlite", path=tmp_path / "journal.sqlite")
    return StoreConfig("postgresql", dsn=journal_dsn)


@pytest.fixture
def store(config: StoreConfig) -> Iterator[JournalStore]:
    opened = open_store(config)
    try:
        yield opened
    finally:
        opened.close()


def _fire(
    slot: str,
    *,
    schedule: str = "nightly",
    target: str = "db",
    status: str = "started",
    slot_last: str | None = None,
    count: int = 1,
    claimed_at: str = AT,
) -> dict[str, Any]:
    # As the scheduler claims a slot: the id is the slot's identity.
    return {
        "id": f"{BOOK}|{schedule}|{target}|{slot}", "playbook": "nightly",
        "playbook_path": BOOK, "schedule": schedule, "target": target, "slot": slot,
        "slot_last": slot_last, "count": count, "status": status, "reason": None,
        "late": 0.25, "run_id": None, "scheduler": "host:1", "claimed_at": claimed_at,
    }  # fmt: skip


def _insert(table: str, row: dict[str, Any]) -> tuple[str, None, str, dict[str, Any]]:
    return (AT, None, f"{table}.insert", {"table": table, "op": "insert", "row": row})


def _update(
    table: str, row: dict[str, Any], expect: dict[str, Any]
) -> tuple[str, None, str, dict[str, Any]]:
    change = {"table": table, "op": "update", "row": row, "expect": expect}
    return (AT, None, f"{table}.update", change)


def _pause(pause_id: str, at: str, paused: bool, path: str = BOOK) -> dict[str, Any]:
    return {
        "id": pause_id, "playbook": "nightly", "playbook_path": path, "target": "*",
        "paused": int(paused), "by": "tester", "at": at, "reason": "maintenance",
    }  # fmt: skip


def _beat(beat_id: str, tick: str, note: str, stopped: str | None = None) -> HeartbeatRecord:
    host, pid, started = beat_id.split(":", 2)
    return HeartbeatRecord(beat_id, host, int(pid), started, tick, stopped, note)


def _tamper(config: StoreConfig, statement: str) -> None:
    """An edit made straight in the table, behind the journal's back."""
    if config.path is not None:
        db = sqlite3.connect(config.path)
        db.execute(statement)
        db.commit()
        db.close()
        return
    assert config.dsn is not None
    with psycopg.connect(config.dsn) as conn:
        conn.execute("SET search_path TO runbook")
        conn.execute(statement)


def test_fires_read_back_by_every_reader(store: JournalStore) -> None:
    store.append(
        [
            _insert("fires", _fire("2026-11-21T02:00:00.000Z", status="missed")),
            _insert("fires", _fire("2026-11-22T02:00:00.000Z")),
            _insert(
                "fires",
                _fire(
                    "2026-11-22T02:00:00.000Z",
                    target="db2",
                    status="skipped",
                    claimed_at="2026-11-23T08:00:01.000Z",
                ),
            ),
            # A long outage: one row for a range of missed slots.
            _insert(
                "fires",
                _fire(
                    "2026-11-10T02:00:00.000Z",
                    schedule="weekly",
                    slot_last="2026-11-17T02:00:00.000Z",
                    count=2,
                    status="missed",
                ),
            ),
        ]
    )
    one = store.fire(f"{BOOK}|nightly|db|2026-11-22T02:00:00.000Z")
    assert isinstance(one, FireRecord)
    assert one.status is FireStatus.STARTED and one.late == 0.25 and one.count == 1
    assert one.scheduler == "host:1" and one.ended_at is None and one.last == one.slot
    assert store.fire("no such fire") is None

    # The latest slot first; of two fires of one slot, the later claimed.
    assert [(f.slot, f.target) for f in store.fires()] == [
        ("2026-11-22T02:00:00.000Z", "db2"),
        ("2026-11-22T02:00:00.000Z", "db"),
        ("2026-11-21T02:00:00.000Z", "db"),
        ("2026-11-10T02:00:00.000Z", "db"),
    ]
    assert [f.target for f in store.fires(target="db2")] == ["db2"]
    assert [f.slot for f in store.fires(status="missed")] == [
        "2026-11-21T02:00:00.000Z",
        "2026-11-10T02:00:00.000Z",
    ]
    assert len(store.fires(playbook_path=BOOK, limit=2)) == 2
    assert store.fires(playbook_path="playbooks/other.yaml") == []

    head = store.fire_head(BOOK, "nightly", "db")
    assert head is not None and head.slot == "2026-11-22T02:00:00.000Z"
    weekly = store.fire_head(BOOK, "weekly", "db")
    assert weekly is not None and weekly.count == 2
    assert weekly.last == "2026-11-17T02:00:00.000Z"
    assert store.fire_head(BOOK, "nightly", "db3") is None

    # A later slot of the weekly schedule: the range row is no longer its head.
    store.append([_insert("fires", _fire("2026-11-24T02:00:00.000Z", schedule="weekly"))])
    heads = {(f.schedule, f.target): f.slot for f in store.fire_heads()}
    assert heads == {
        ("nightly", "db"): "2026-11-22T02:00:00.000Z",
        ("nightly", "db2"): "2026-11-22T02:00:00.000Z",
        ("weekly", "db"): "2026-11-24T02:00:00.000Z",
    }
    assert len(store.fire_heads()) == 3  # one row per (playbook, schedule, target)
    assert store.verify() == []


def test_a_slot_is_claimed_once_and_a_conflict_writes_nothing(store: JournalStore) -> None:
    slot = "2026-11-22T02:00:00.000Z"
    store.append([_insert("fires", _fire(slot))])
    before = (store.head(), len(store.events()))
    # Another scheduler claims the same slot: refused, nothing of its append written.
    with pytest.raises(Conflict):
        store.append([_insert("fires", _fire(slot, status="skipped"))])
    # Two claims in one append, the second taken already: neither is written.
    fresh = _fire("2026-11-23T02:00:00.000Z")
    with pytest.raises(Conflict):
        store.append([_insert("fires", fresh), _insert("fires", _fire(slot))])
    assert (store.head(), len(store.events())) == before
    assert store.fire(fresh["id"]) is None
    [kept] = store.fires()
    assert kept.status is FireStatus.STARTED
    assert store.verify() == []


def test_a_queued_fire_is_started_once(store: JournalStore) -> None:
    row = _fire("2026-11-22T02:00:00.000Z", status="queued")
    store.append([_insert("fires", row)])
    start = {"id": row["id"], "status": "started", "run_id": "r1"}
    store.append([_update("fires", start, {"status": "queued"})])
    before = store.head()
    # A second tick read it queued too: its update finds it changed.
    with pytest.raises(Conflict):
        store.append([_update("fires", {**start, "run_id": "r2"}, {"status": "queued"})])
    assert store.head() == before
    fire = store.fire(row["id"])
    assert fire is not None and fire.status is FireStatus.STARTED and fire.run_id == "r1"
    end = {"id": row["id"], "ended_at": AT, "run_status": "ok"}
    store.append([_update("fires", end, {"status": "started"})])
    ended = store.fire(row["id"])
    assert ended is not None and ended.run_status == "ok" and ended.ended_at == AT
    assert store.verify() == []


def test_pauses_read_newest_first(store: JournalStore) -> None:
    store.append(
        [
            _insert("pauses", _pause("p1", "2026-11-20T10:00:00.000Z", True)),
            _insert("pauses", _pause("p2", "2026-11-21T10:00:00.000Z", False)),
            _insert("pauses", _pause("p3", "2026-11-19T10:00:00.000Z", True, "playbooks/x.yaml")),
        ]
    )
    assert [p.id for p in store.pauses()] == ["p2", "p1", "p3"]
    latest, earlier = store.pauses(BOOK)
    assert isinstance(latest, PauseRecord)
    assert latest.paused is False and earlier.paused is True
    assert latest.by == "tester" and latest.target == "*" and latest.reason == "maintenance"
    assert store.pauses("playbooks/none.yaml") == []
    assert store.verify() == []


def test_heartbeats_are_upserted_outside_the_chain(store: JournalStore) -> None:
    head = store.head()
    store.beat(_beat("a:1:2026-11-23T07:00:00Z", "2026-11-23T08:00:00Z", "started"))
    store.beat(_beat("b:2:2026-11-23T07:30:00Z", "2026-11-23T08:00:30Z", "idle"))
    last = _beat("a:1:2026-11-23T07:00:00Z", "2026-11-23T08:01:00Z", "fired 2", "stopped")
    store.beat(last)
    assert store.heartbeats() == [
        last,
        _beat("b:2:2026-11-23T07:30:00Z", "2026-11-23T08:00:30Z", "idle"),
    ]
    assert store.head() == head  # liveness, not history: no event
    assert store.verify() == []


def test_verify_replays_the_ledger_and_catches_an_edit(
    store: JournalStore, config: StoreConfig
) -> None:
    row = _fire("2026-11-22T02:00:00.000Z", status="queued")
    store.append([_insert("fires", row), _insert("pauses", _pause("p1", AT, True))])
    store.beat(_beat("a:1:2026-11-23T07:00:00Z", AT, "started"))
    assert store.verify() == []
    assert verify_journal(config).problems == []
    # Someone with write access to the table starts a queued fire by hand.
    _tamper(config, "UPDATE fires SET status = 'started'")
    problems = verify_journal(config).problems
    assert any(p.startswith("fires ") and "column status differs" in p for p in problems)
    assert store.verify() == problems
    # A pause removed behind the journal's back is caught too; heartbeats are not verified.
    _tamper(config, "DELETE FROM pauses")
    _tamper(config, "DELETE FROM heartbeats")
    problems = verify_journal(config).problems
    assert any("pauses ('p1',): recorded in events but missing" in p for p in problems)
    assert not any("heartbeats" in p for p in problems)


def _v5_journal(path: Path) -> None:
    """A journal as runbook wrote it at schema version 5 (before the scheduler's
    tables), with a run in it: one of today's, its newer tables taken away."""
    journal = Journal(path)
    run = {"id": "r1", "playbook": "p", "mode": "run", "started_at": AT, "status": "ok"}
    journal.append([(AT, "r1", "run.start", {"table": "runs", "op": "insert", "row": run})])
    journal.close()
    db = sqlite3.connect(path, isolation_level=None)
    for table in ("fires", "pauses", "heartbeats", "drills", "drill_notes", "approvals",
                  "approval_votes"):  # fmt: skip
        db.execute(f"DROP TABLE {table}")
    db.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    db.close()


def test_a_schema_5_journal_verifies_then_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _v5_journal(path)
    config = StoreConfig("sqlite", path=path)
    # Not yet opened by this runbook: lacking the scheduler's tables is no problem.
    assert verify_journal(config).problems == []
    journal = Journal(path)
    try:
        version = journal.query("SELECT value FROM meta WHERE key = 'schema_version'")
        assert version == [{"value": str(SCHEMA_VERSION)}]
        journal.append([_insert("fires", _fire("2026-11-22T02:00:00.000Z"))])
        journal.append([_insert("pauses", _pause("p1", AT, True))])
        journal.beat(_beat("a:1:2026-11-23T07:00:00Z", AT, "started"))
        assert len(journal.fires()) == len(journal.pauses()) == len(journal.heartbeats()) == 1
        assert journal.verify() == []
    finally:
        journal.close()
    # Once it has them, one dropped is a problem.
    db = sqlite3.connect(path)
    db.execute("DROP TABLE pauses")
    db.commit()
    db.close()
    assert "table pauses is missing: dropped, or not a runbook journal" in (
        verify_journal(config).problems
    )


def test_a_postgresql_journal_at_migration_2_verifies_then_is_upgraded(
    pg_server: PgServer,
) -> None:
    name = pg_server.create_database()
    config = StoreConfig("postgresql", dsn=pg_server.dsn_for(name))
    try:
        with psycopg.connect(pg_server.dsn_for(name), autocommit=True) as conn:
            conn.execute("CREATE SCHEMA runbook")
            conn.execute("SET search_path TO runbook")
            for number in (1, 2):
                conn.execute(migrate.migrations()[number].read_text().encode())
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', '2'),"
                " ('hash_version', '{\"from_seq\":1,\"version\":2}')"
            )
        assert verify_journal(config).problems == []
        store = open_store(config)
        try:
            store.append([_insert("fires", _fire("2026-11-22T02:00:00.000Z"))])
            store.beat(_beat("a:1:2026-11-23T07:00:00Z", AT, "started"))
            assert len(store.fires()) == 1 and len(store.heartbeats()) == 1
            assert store.verify() == []
        finally:
            store.close()
        conn = migrate.connect(config)
        try:
            assert migrate.version(conn, "runbook") == migrate.latest_version()
        finally:
            conn.close()
    finally:
        pg_server.drop_database(name)


@pytest.mark.sqlite_only  # copies the SQLite journal into PostgreSQL
def test_journal_copy_carries_the_ledger_and_pauses(project: Project, pg_server: PgServer) -> None:
    journal = project.journal()
    try:
        journal.append(
            [
                _insert("fires", _fire("2026-11-22T02:00:00.000Z", status="queued")),
                _insert("pauses", _pause("p1", AT, True)),
            ]
        )
        fire_id = _fire("2026-11-22T02:00:00.000Z")["id"]
        start = {"id": fire_id, "status": "started"}
        journal.append([_update("fires", start, {"status": "queued"})])
        journal.beat(_beat("a:1:2026-11-23T07:00:00Z", AT, "started"))
    finally:
        journal.close()
    name = pg_server.create_database()
    try:
        copied = project.run("journal", "copy", "--to", pg_server.dsn_for(name))
        assert copied.exit_code == 0, copied.output
        assert "the copy verifies with 0 problem(s)" in copied.stdout
        store = open_store(StoreConfig("postgresql", dsn=pg_server.dsn_for(name)))
        try:
            [fire] = store.fires()
            assert fire.id == fire_id and fire.status is FireStatus.STARTED
            assert [p.id for p in store.pauses()] == ["p1"]
            assert store.heartbeats() == []  # liveness of the old journal's schedulers: not copied
        finally:
            store.close()
    finally:
        pg_server.drop_database(name)


def test_fires_of_one_playbook_and_since_are_found_however_many_other_fires_are_newer(
    store: JournalStore,
) -> None:
    # A busy routine fires every few minutes; a nightly one's fires are older
    # than hundreds of the busy one's. Filtered after the LIMIT (as `history
    # --fires --playbook` once was), the nightly ones were never found.
    busy = [
        {
            **_fire(f"2026-11-23T{h:02d}:{m:02d}:00.000Z"),
            "id": f"playbooks/busy.yaml|often|db|{h}:{m}",
            "playbook": "busy",
            "playbook_path": "playbooks/busy.yaml",
            "schedule": "often",
        }
        for h in range(10)
        for m in range(0, 60, 2)
    ]
    nightly = [
        _fire("2026-11-20T02:00:00.000Z"),
        _fire("2026-11-21T02:00:00.000Z"),
        _fire(
            "2026-11-10T02:00:00.000Z",
            schedule="weekly",
            slot_last="2026-11-22T02:00:00.000Z",
            count=2,
            status="missed",
        ),
    ]
    store.append([_insert("fires", row) for row in [*nightly, *busy]])
    assert len(busy) == 300
    by_name = store.fires(playbook="nightly", limit=50)
    assert [f.slot for f in by_name] == [
        "2026-11-21T02:00:00.000Z",
        "2026-11-20T02:00:00.000Z",
        "2026-11-10T02:00:00.000Z",
    ]
    assert store.fires(playbook=BOOK, limit=50) == by_name  # by its path as well
    assert store.fires(playbook="nightly", limit=2) == by_name[:2]
    assert store.fires(playbook="playbooks/none.yaml") == []
    # Since the 21st: the slot of the 21st, and the range reaching to the 22nd.
    since = store.fires(playbook="nightly", since="2026-11-21T00:00:00.000Z")
    assert [f.slot for f in since] == ["2026-11-21T02:00:00.000Z", "2026-11-10T02:00:00.000Z"]
    assert len(store.fires(since="2026-11-23T09:00:00.000Z", limit=1000)) == 30
    # limit None: every row; unsettled: started fires whose run's end is not recorded.
    assert len(store.fires(limit=None)) == 303
    store.append(
        [_update("fires", {"id": nightly[0]["id"], "run_status": "ok", "ended_at": AT}, {})]
    )
    unsettled = store.fires(status="started", unsettled=True, limit=None)
    assert len(unsettled) == 300 + 1 and nightly[0]["id"] not in {f.id for f in unsettled}
