"""The copy a drill runs on, made, marked and dropped.

`template`: CREATE DATABASE … TEMPLATE on the target's own server (STRATEGY
FILE_COPY from PostgreSQL 15: a file copy, fast, and no WAL for every page) —
PostgreSQL allows it only while nobody else is connected to the source.
`dump`: pg_dump -Fc of the source piped into pg_restore -j on the embedded
server, whose data folder only the server's user can read (mode 700). `auto` tries the first
and falls back to the second.

The copy is marked with a comment naming the drill; every connection a drill
makes checks it (runbook.pg.db.ConnectSpec.drill_mark), so nothing a drill
runs reaches a database without the mark.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from runbook.errors import TargetError
from runbook.model import Target
from runbook.pg import sandbox
from runbook.redact import first_line, redact_dsn


class CopyError(TargetError):
    """The copy could not be made or dropped (exit 3: the drill did not start)."""


@dataclass(frozen=True)
class Copy:
    database: str
    server: str  # "same": the target's server; "embedded": the sandbox's
    method: str  # template | dump
    mark: str

    def spec(self, drill_id: str, role: str) -> dict[str, str]:
        """What a drill's RunSpec carries (runbook.service.drill_dsn)."""
        return {
            "id": drill_id,
            "role": role,
            "database": self.database,
            "server": self.server,
            "mark": self.mark,
        }


def source(target: Target, root: Path) -> tuple[str, dict[str, str]]:
    """The DSN (and libpq environment) of what a drill copies: the target's own
    database, or the idle golden copy beside it that the inventory names."""
    from runbook import service

    dsn, env = service.resolve_dsn(target, root, set())
    if target.golden_copy:
        dsn = make_conninfo(dsn, dbname=target.golden_copy)
    return dsn, env


def mark_of(drill_id: str, target: str) -> str:
    return f"runbook drill {drill_id}: a copy of {target}; dropped when the drill ends"


def make(dsn: str, drill_id: str, target: str, method: str, root: Path) -> tuple[Copy, str | None]:
    """The marked copy of the database at `dsn`; and why `auto` fell back to a dump."""
    name = f"drill_{drill_id}"
    mark = mark_of(drill_id, target)
    why: str | None = None
    if method in ("auto", "template"):
        try:
            _template(dsn, name, mark)
            return Copy(name, "same", "template", mark), None
        except psycopg.Error as exc:
            why = first_line(exc)
            if method == "template":
                raise CopyError(
                    f"cannot copy {target} on its server: {why} (copy: dump restores it "
                    "into the embedded server instead)"
                ) from None
    _dump(dsn, name, mark, root)
    return Copy(name, "embedded", "dump", mark), why


def drop(copy: Copy, dsn: str, root: Path) -> None:
    """Drop the copy (its connections ended first); never the target: only a
    database carrying the drill's mark is dropped."""
    admin = sandbox.server(root).dsn if copy.server == "embedded" else _maintenance(dsn)
    with psycopg.connect(admin, autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (copy.database,),
        ).fetchone()
        if row is None:
            return
        if row[0] != copy.mark:
            raise CopyError(
                f"database {copy.database} does not carry the drill's mark: not dropped"
            )
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(copy.database)))


def _maintenance(dsn: str) -> str:
    return make_conninfo(dsn, dbname="postgres")


def _template(dsn: str, name: str, mark: str) -> None:
    source = conninfo_to_dict(dsn).get("dbname") or ""
    with psycopg.connect(_maintenance(dsn), autocommit=True) as conn:
        strategy = (
            sql.SQL(" STRATEGY FILE_COPY") if conn.info.server_version >= 150000 else sql.SQL("")
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}{}").format(
                sql.Identifier(name), sql.Identifier(str(source)), strategy
            )
        )
        _comment(conn, name, mark)


def _comment(conn: psycopg.Connection[tuple[object, ...]], name: str, mark: str) -> None:
    conn.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(mark))
    )


def _dump(dsn: str, name: str, mark: str, root: Path) -> None:
    """pg_dump | pg_restore into a new database on the embedded server. The
    password travels in the environment, never on a command line."""
    # The copy's files live in the sandbox's data folder, which PostgreSQL
    # keeps readable by the server's user alone (mode 700).
    server = sandbox.server(root)
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        _comment(conn, name, mark)
    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    env = {**os.environ}
    password = params.pop("password", None)
    if password:
        env["PGPASSWORD"] = password
    tools = sandbox.bin_dir()
    dump = subprocess.Popen(
        [str(tools / "pg_dump"), "-Fc", "--no-owner", "-d", make_conninfo(**params)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    restore = subprocess.run(
        [
            str(tools / "pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "-d",
            server.database_dsn(name),
        ],
        stdin=dump.stdout,
        capture_output=True,
        check=False,
    )
    if dump.stdout is not None:
        dump.stdout.close()
    dumped = dump.wait()
    dump_err = dump.stderr.read().decode(errors="replace") if dump.stderr else ""
    if dumped != 0 or restore.returncode != 0:
        said = dump_err.strip() or restore.stderr.decode(errors="replace").strip()
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        raise CopyError(f"cannot copy the target by pg_dump | pg_restore: {_last(said)}")


def _last(text: str) -> str:
    """What pg_dump or pg_restore said went wrong: its last `error:` line
    (its hints, "Is the server running …?", follow it), else its last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    return redact_dsn((errors or lines or ["no message"])[-1])
