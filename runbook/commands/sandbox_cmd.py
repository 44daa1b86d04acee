"""`runbook sandbox up|status|down|reset`."""

from __future__ import annotations

from pathlib import Path

from runbook.pg import embedded, sandbox


def up(root: Path) -> str:
    server = sandbox.up(root)
    return f"sandbox running (pid {server.pid}, data {server.pgdata})\ndsn: {server.database_dsn(embedded.DATABASE)}"


def status(root: Path, dsn_only: bool = False) -> tuple[str, int]:
    """The sandbox's state and DSN (exit 3 when it is not running); `dsn_only`:
    the DSN alone, for `psql "$(runbook sandbox status --dsn)"`."""
    server = sandbox.status(root)
    if server is None:
        return f"sandbox not running (data folder {sandbox.pgdata(root)})", 3
    if dsn_only:
        return server.database_dsn(embedded.DATABASE), 0
    return (
        f"sandbox running (pid {server.pid}, data {server.pgdata})\ndsn: {server.database_dsn(embedded.DATABASE)}",
        0,
    )


def down(root: Path) -> str:
    return "sandbox stopped" if sandbox.down(root) else "sandbox was not running"


def reset(root: Path) -> str:
    server = sandbox.reset(root)
    return f"sandbox database {embedded.DATABASE} recreated\ndsn: {server.database_dsn(embedded.DATABASE)}"
