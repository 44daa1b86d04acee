from __future__ import annotations

from pathlib import Path

import psycopg

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
