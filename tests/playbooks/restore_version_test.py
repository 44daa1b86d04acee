"""The bundled restore refuses a dump from a newer pg_dump than the server,
with the reason, before anything is created; a dump for the server's own
version (or an older one) is restored."""

from __future__ import annotations

import gzip
import os
import subprocess

import psycopg
import pytest

from runbook.pg import embedded, pgtools, sandbox

from ..conftest import REPO, Project

RESTORE = REPO / "playbooks" / "hist-data-ingestor" / "restore.yaml"


def server_major(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.info.server_version // 10000


def plain_dump(major: int) -> bytes:
    """A plain dump as pg_dump `major` writes its header and closing line."""
    return (
        "--\n-- PostgreSQL database dump\n--\n\n"
        f"-- Dumped from database version {major}.1\n-- Dumped by pg_dump version {major}.1\n\n"
        "CREATE TABLE public.ohlcv_data (id integer);\nINSERT INTO public.ohlcv_data VALUES (1);\n\n"
        "--\n-- PostgreSQL database dump complete\n--\n\n"
    ).encode()


def restore(project: Project, dump: str, into: str) -> object:
    return project.run(
        "run", str(RESTORE), "-i", str(project.root / "inventory.yaml"), "--yes",
        "-e", f"dump_file={dump}", "-e", f"restore_database={into}",
    )  # fmt: skip


def database_exists(dsn: str, name: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            is not None
        )


def scratch_name() -> str:
    return f"rv_{os.urandom(4).hex()}"


@pytest.mark.parametrize("newer_by", [1, 80])
def test_a_dump_from_a_newer_pg_dump_is_refused_with_the_reason(
    demo_project: Project, newer_by: int
) -> None:
    major = server_major(demo_project.dsn)
    (demo_project.root / "backups").mkdir()
    (demo_project.root / "backups" / "new.sql.gz").write_bytes(
        gzip.compress(plain_dump(major + newer_by))
    )
    into = scratch_name()
    result = restore(demo_project, "backups/new.sql.gz", into)
    assert result.exit_code == 1, result.output
    assert f"written by pg_dump {major + newer_by}" in result.output
    assert f"runs PostgreSQL {major}" in result.output
    assert "nothing was restored" in result.output
    steps = {
        s["key"]: s["status"] for s in demo_project.last_run()["steps"] if s["phase"] == "main"
    }
    assert steps["dump_version"] == "gate_failed"
    assert steps["create_database"] == "not_run" and steps["restore"] == "not_run"
    assert not database_exists(demo_project.dsn, into)


def test_a_dump_without_its_version_line_is_refused(demo_project: Project) -> None:
    text = plain_dump(server_major(demo_project.dsn)).replace(
        b"-- Dumped by pg_dump version", b"--"
    )
    (demo_project.root / "d.sql").write_bytes(text)
    result = restore(demo_project, "d.sql", scratch_name())
    assert result.exit_code == 1, result.output
    assert 'no "Dumped by pg_dump version" line' in result.output


@pytest.mark.parametrize("older_by", [0, 2])
def test_a_dump_for_this_server_or_an_older_one_is_restored(
    demo_project: Project, older_by: int
) -> None:
    major = server_major(demo_project.dsn)
    (demo_project.root / "ok.sql").write_bytes(plain_dump(major - older_by))
    into = scratch_name()
    try:
        result = restore(demo_project, "ok.sql", into)
        assert result.exit_code == 0, result.output
        with psycopg.connect(embedded.replace_database(demo_project.dsn, into)) as conn:
            assert conn.execute("SELECT count(*) FROM ohlcv_data").fetchone() == (1,)
    finally:
        with psycopg.connect(demo_project.dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{into}" WITH (FORCE)')


def test_a_real_dump_of_the_embedded_pg_dump_into_an_older_server(demo_project: Project) -> None:
    """Where the server is older than the embedded server's pg_dump (the
    second-major run of `make test`), the real thing: refused, nothing made."""
    major = server_major(demo_project.dsn)
    embedded = pgtools.read_version(sandbox.bin_dir())
    assert embedded is not None
    if embedded[1] <= major:
        pytest.skip(f"the server ({major}) is not older than the embedded pg_dump ({embedded[1]})")
    env = {
        **os.environ,
        "PGDATABASE": psycopg.conninfo.conninfo_to_dict(demo_project.dsn)["dbname"],
    }
    params = psycopg.conninfo.conninfo_to_dict(demo_project.dsn)
    env.update(
        {
            f"PG{k.upper()}": str(v)
            for k, v in params.items()
            if k in ("host", "port", "user", "password")
        }
    )
    dump = subprocess.run(
        [str(sandbox.bin_dir() / "pg_dump"), "--clean", "--if-exists"],
        env=env, capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert b"transaction_timeout" in dump  # what an older server refuses
    (demo_project.root / "real.sql.gz").write_bytes(gzip.compress(dump))
    into = scratch_name()
    result = restore(demo_project, "real.sql.gz", into)
    assert result.exit_code == 1, result.output
    assert f"written by pg_dump {embedded[1]}" in result.output
    assert not database_exists(demo_project.dsn, into)
