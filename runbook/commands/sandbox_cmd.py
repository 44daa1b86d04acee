"""`runbook sandbox up|status|down|reset`."""

from __future__ import annotations

from pathlib import Path

from runbook.pg import embedded, sandbox


def up(root: Path) -> str:
    server = sandbox.up(root)
    return f"sandbox running (pid {server.pid}, data {server.pgdata})\ndsn: {server.database_dsn(embedded.DATABASE)}"


def status(root: Path) -> tuple[str, int]:
    server = sandbox.status(root)
    if server is None:
        return f"sandbox not running (data folder {sandbox.pgdata(root)})", 3
    return (
        f"sandbox running (pid {server.pid}, data {server.pgdata})\ndsn: {server.database_dsn(embedded.DATABASE)}",
        0,
    )


def down(root: Path) -> str:
    return "sandbox stopped" if sandbox.down(root) else "sandbox was not running"


def reset(root: Path) -> str:
    server = sandbox.reset(root)
    return f"sandbox database {embedded.DATABASE} recreated\ndsn: {server.database_dsn(embedded.DATABASE)}"
