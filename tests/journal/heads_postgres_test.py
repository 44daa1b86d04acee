"""The PostgreSQL journal's heads kept by a store between appends: a run's
later appends go in one round trip, without reading and locking its chain
first; a head moved meanwhile by another appender is caught by the events'
(stream, pos) key and the append is made again the locking way.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from runbook.journal.events import Conflict
from runbook.journal.postgres import PostgresStore
from runbook.journal.store import verify_journal

from .chain_postgres_test import AT, _config, _end, _incident, _rows, _start, _step, pg_journal

__all__ = ["pg_journal"]  # the fixture, shared with the chain tests


@contextmanager
def _traced(store: PostgresStore) -> Iterator[list[str]]:
    """The messages on the store's connection while the block runs, each
    way (libpq's own protocol trace): what went over the wire."""
    fd, path = tempfile.mkstemp()
    lines: list[str] = []
    store.conn.pgconn.trace(fd)
    try:
        yield lines
    finally:
        store.conn.pgconn.untrace()
        # libpq writes the trace through a C stream of its own, buffered and
        # never closed: flushed here (every C stream), or its tail is lost.
        ctypes.CDLL(None).fflush(None)
        os.close(fd)
        with open(path, encoding="utf-8", errors="replace") as trace:
            lines += [line for line in trace if "\tF\t" in line or "\tB\t" in line]
        os.unlink(path)


def _round_trips(sent: list[str]) -> int:
    """How many times the client sent and then waited for the server's answers."""
    ways = [line.split("\t")[1] for line in sent]
    return sum(1 for now, then in itertools.pairwise(ways) if (now, then) == ("F", "B"))


def _locks(sent: list[str]) -> int:
    return sum(1 for line in sent if "\tF\t" in line and "\tParse" in line and "unnest" in line)


def test_a_runs_later_appends_take_one_round_trip_and_no_lock_statement(
    pg_journal: str,
) -> None:
    store = PostgresStore(_config(pg_journal))
    try:
        with _traced(store) as started:
            store.append([_start("a"), _start("b")])  # new chains: nothing to read
        with _traced(store) as stepped:
            store.append([_step("a", 1), _step("b", 1)])
        with _traced(store) as ended:
            store.append([_step("a", 2), _end("a"), _end("b")])
        for sent in (started, stepped, ended):
            assert _round_trips(sent) == 1
            assert _locks(sent) == 0
        # A store that knows nothing of a run reads and locks its chain first.
        other = PostgresStore(_config(pg_journal), create=False)
        try:
            with _traced(other) as cold:
                other.append([_step("a", 3)])
            assert _locks(cold) == 1 and _round_trips(cold) == 2
        finally:
            other.close()
        assert store.verify() == []
    finally:
        store.close()
    lengths = dict(_rows(pg_journal, "SELECT stream, length FROM runbook.chains"))
    assert lengths == {"a": 5, "b": 3, "": 2}  # two seals on the journal-wide chain
    assert verify_journal(_config(pg_journal)).problems == []


def test_a_head_moved_by_another_appender_is_read_again_and_nothing_is_lost(
    pg_journal: str,
) -> None:
    mine = PostgresStore(_config(pg_journal))
    theirs = PostgresStore(_config(pg_journal), create=False)
    try:
        mine.append([_start("r")])  # mine knows r's head: length 1
        theirs.append([_step("r", 1)])  # and it moves to 2 (a rollback elsewhere, say)
        # Mine's head is stale; the append (with an incident, numbered by the
        # server, so that the retry must number it anew) is made again.
        ids = mine.append([_step("r", 2), _incident("r"), _end("r")])
        [(incident_id,)] = _rows(pg_journal, "SELECT id FROM runbook.incidents")
        assert ids == [incident_id]
        assert [s.name for s in mine.steps("r")] == ["s1", "s2"]
        assert mine.verify() == []
    finally:
        mine.close()
        theirs.close()
    assert _rows(pg_journal, "SELECT length FROM runbook.chains WHERE stream = 'r'") == [(4,)]
    assert verify_journal(_config(pg_journal)).problems == []


def test_a_run_id_taken_twice_is_still_a_conflict_and_the_first_run_intact(
    pg_journal: str,
) -> None:
    store = PostgresStore(_config(pg_journal))
    try:
        store.append([_start("dup"), _step("dup", 1)])
        # Another store (another host) starts a run of the same id: its new
        # chain collides with the existing one, then the run's row does.
        other = PostgresStore(_config(pg_journal), create=False)
        try:
            with pytest.raises(Conflict, match="runs"):
                other.append([_start("dup")])
        finally:
            other.close()
        store.append([_step("dup", 2), _end("dup")])  # the first run goes on unharmed
        assert store.verify() == []
    finally:
        store.close()
    assert _rows(pg_journal, "SELECT length FROM runbook.chains WHERE stream = 'dup'") == [(4,)]


def test_appenders_with_known_and_read_heads_at_once_lose_nothing_and_never_deadlock(
    pg_journal: str,
) -> None:
    # One store keeps appending to its runs (heads known); others append to
    # the same runs through stores that must read and lock them: the orders
    # of their locks agree, and a stale head is only ever made again.
    runs = [f"run-{n}" for n in range(12)]
    keeper = PostgresStore(_config(pg_journal))
    keeper.append([_start(run) for run in runs])
    errors: list[BaseException] = []
    seqs = iter(range(1, 10_000))
    lock = threading.Lock()

    def step(run: str) -> Any:
        with lock:
            return _step(run, next(seqs))

    def append_from(store: PostgresStore, rounds: int) -> None:
        try:
            for _ in range(rounds):
                store.append([step(run) for run in runs])
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    others = [PostgresStore(_config(pg_journal), create=False) for _ in range(2)]
    threads = [threading.Thread(target=append_from, args=(keeper, 15))] + [
        threading.Thread(target=append_from, args=(store, 15)) for store in others
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        keeper.append([_end(run) for run in runs])
        assert keeper.verify() == []
    finally:
        keeper.close()
        for store in others:
            store.close()
    lengths = dict(
        _rows(pg_journal, "SELECT stream, length FROM runbook.chains WHERE stream <> ''")
    )
    assert lengths == {run: 1 + 45 + 1 for run in runs}
    assert verify_journal(_config(pg_journal)).problems == []
    with psycopg.connect(pg_journal) as conn:
        [(positions,)] = conn.execute(
            "SELECT count(*) FROM runbook.events e JOIN runbook.chains c USING (stream)"
            " WHERE e.pos > c.length"
        ).fetchall()
    assert positions == 0


@pytest.mark.parametrize("before", range(1, 9))
def test_appends_after_a_refused_one_still_go_whatever_was_being_prepared(
    pg_journal: str, before: int
) -> None:
    # psycopg prepares a statement on its fifth use. In a pipeline that fails,
    # the server skips the statements after the failing one, their preparing
    # too, while psycopg may count them prepared: refused appends (a run id
    # taken twice) then left later appends failing on "prepared statement
    # does not exist". Whichever statement's fifth use a refusal falls on.
    store = PostgresStore(_config(pg_journal))
    runs = (f"r{n}" for n in range(1000))
    try:
        for _ in range(6):
            for _ in range(before):
                run = next(runs)
                store.append([_start(run), _step(run, 1)])
            with pytest.raises(Conflict):
                store.append([_step("r0", 2), _start("r0")])
        for run in [next(runs) for _ in range(8)]:
            store.append([_start(run), _step(run, 1), _end(run)])
        assert store.verify() == []
    finally:
        store.close()


def _parsed(sent: list[str], text: str) -> int:
    """How many statements starting with `text` the client had the server parse."""
    return sum(1 for line in sent if "\tF\t" in line and "\tParse" in line and text in line)


def test_batches_of_any_size_reuse_a_few_prepared_statements(pg_journal: str) -> None:
    # A fleet's batches come in every size. Their rows go in parts of 1, 2,
    # 4 … 64 (events.in_parts): a few statement texts, each prepared once
    # used often enough, not a text per size parsed and planned every time.
    store = PostgresStore(_config(pg_journal))
    try:
        runs = itertools.count()

        def append(size: int) -> None:
            run = f"r{next(runs)}"
            store.append([_start(run), *(_step(run, seq) for seq in range(1, size))])

        for size in [1, 2, 4, 8, 16, 32, 64] * 6:  # each part's size, used 6 times
            append(size)
        with _traced(store) as sent:
            for size in (3, 17, 45, 63, 100, 129):  # sizes not seen before
                append(size)
        assert _round_trips(sent) == 6  # one an append, as before
        assert _parsed(sent, "INSERT INTO events") == 0
        assert _parsed(sent, "INSERT INTO chains") == 0
        assert store.verify() == []
    finally:
        store.close()


def test_an_append_sent_at_once_binds_its_values_and_prepares_each_text_once(
    pg_journal: str,
) -> None:
    # An append that needs no answer before its COMMIT goes to libpq at once
    # (runbook.journal.postgres_send): its texts are prepared, its values
    # bound, however hostile; what it wrote reads back exactly.
    hostile = "x'); DROP TABLE runbook.events; --$$\\'"
    store = PostgresStore(_config(pg_journal))
    try:
        with _traced(store) as sent:
            for n in range(3):
                run = f"{hostile}{n}"
                row = {"run_id": run, "seq": 1, "status": "ok", "name": hostile}
                store.append(
                    [_start(run), (AT, run, "step", {"table": "steps", "op": "insert", "row": row})]
                )
                store.append([_end(run)])
        parsed = [line for line in sent if "\tF\t" in line and "\tParse" in line]
        bound = [line for line in sent if "\tF\t" in line and "\tBind" in line]
        assert parsed and not any("DROP TABLE" in line for line in parsed)
        assert any("DROP TABLE" in line for line in bound)
        # Each text parsed once on this connection, then executed by name.
        texts = [line.split("\t")[4] for line in parsed if "runbook_append_" in line]
        assert len(texts) == len(set(texts)) and len(texts) >= 3
        assert _round_trips(sent) == 6
        with store.conn.cursor() as cur:  # the store's own connection holds them
            held = cur.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'runbook_append_%'"
            ).fetchone()
        assert held is not None and held[0] == len(texts)
        assert store.verify() == []
    finally:
        store.close()
    got = _rows(pg_journal, "SELECT id FROM runbook.runs ORDER BY id")
    assert got == [(f"{hostile}{n}",) for n in range(3)]
    steps = _rows(pg_journal, "SELECT payload FROM runbook.events WHERE kind = 'step'")
    assert len(steps) == 3 and all(json.loads(str(p))["row"]["name"] == hostile for (p,) in steps)
