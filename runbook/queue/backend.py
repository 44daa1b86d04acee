"""The queue's storage: procrastinate's App on the journal's database, its
tables in `<journal schema>_queue`. Every statement about the queue is here."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from runbook.errors import JournalError, RunbookError, UsageError
from runbook.journal.migrate import resolve_dsn
from runbook.journal.store import StoreConfig
from runbook.pg.lost import connection_lost
from runbook.redact import first_line

RUN_TASK = "runbook.run"
RESUME_TASK = "runbook.resume"
DEFAULT_QUEUE = "runbook"


def schema_of(config: StoreConfig) -> str:
    return f"{config.schema}_queue"


def require_postgres(config: StoreConfig) -> None:
    if config.backend != "postgresql":
        raise UsageError(
            "the queue lives in a PostgreSQL journal's database: set `journal: {dsn: …}` in "
            "the inventory (`dsn: embedded` for the embedded server), or $RUNBOOK_JOURNAL"
        )


def conninfo(config: StoreConfig) -> tuple[str, dict[str, Any]]:
    """The journal's DSN, and connection settings that put the queue's schema first."""
    return resolve_dsn(config), {"options": f"-c search_path={schema_of(config)}"}


@contextlib.contextmanager
def connected(
    config: StoreConfig, *, queue_first: bool = True
) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the journal's database, the queue's schema first on its
    path (`queue_first`). A server that cannot be reached, or a connection
    lost on the way, is a JournalError (exit 3) naming the journal, not a
    traceback."""
    dsn, options = conninfo(config)
    try:
        with psycopg.connect(
            dsn, autocommit=True, connect_timeout=10, **(options if queue_first else {})
        ) as conn:
            yield conn
    except psycopg.Error as exc:
        raise JournalError(
            f"cannot reach the queue in the journal {config.where}: {first_line(exc)}"
        ) from None


def ensure_schema(config: StoreConfig) -> None:
    """The queue's tables, made on first use (or by `runbook journal upgrade`)."""
    require_postgres(config)
    from procrastinate import schema as schema_module

    name = schema_of(config)
    with connected(config, queue_first=False) as conn:
        # One maker at a time: two workers starting on a fresh database.
        conn.execute("SELECT pg_advisory_lock(hashtext('runbook-queue-schema'))")
        try:
            made = conn.execute(
                "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'procrastinate_jobs'",
                (name,),
            ).fetchone()
            if made:
                return
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(name)))
            conn.execute(schema_module.SchemaManager.get_schema().encode())
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('runbook-queue-schema'))")


def app_for(config: StoreConfig) -> Any:
    """procrastinate's App on the journal's database, our two tasks registered
    by name (their code is runbook.queue.tasks; a job names its task only)."""
    import procrastinate

    dsn, kwargs = conninfo(config)
    connector = procrastinate.PsycopgConnector(conninfo=dsn, kwargs=kwargs, min_size=1, max_size=4)
    return procrastinate.App(connector=connector)


def lock_of(playbook: str, target: str) -> str:
    """One run of a playbook on a target at a time, across every worker."""
    return f"{playbook}@{target}"


@dataclass(frozen=True)
class NewJob:
    task: str
    args: dict[str, Any]
    lock: str
    queueing_lock: str | None = None


def enqueue(config: StoreConfig, jobs: list[NewJob]) -> list[int]:
    """The jobs queued in one statement (all or none); their ids. A job whose
    `queueing_lock` a waiting job holds refuses them all (AlreadyQueued).

    A connection lost as the statement went out (the server restarted, the
    backend terminated, a network cut) may have lost only the answer: on a
    new connection the jobs are looked for; found, their ids are returned;
    not found, they are queued once more. Queued twice, a run's job would run
    it twice (the operator, told only "cannot reach", runs the command
    again); a job that did land and is queued again anyway (its statement
    still on its way on the old connection) names the same run id, which the
    journal takes once: the second one's run stops as a conflict, nothing run."""
    if not jobs:
        return []
    rows = [(DEFAULT_QUEUE, j.task, 0, j.lock, j.queueing_lock, json.dumps(j.args)) for j in jobs]
    placeholders = ", ".join(
        "ROW(%s, %s, %s, %s, %s, %s::jsonb, NULL)::procrastinate_job_to_defer_v1" for _ in rows
    )
    query = f"SELECT procrastinate_defer_jobs_v1(ARRAY[{placeholders}])"
    params = [value for row in rows for value in row]
    lost: BaseException = JournalError("")
    for _ in range(2):  # once more if the jobs never reached the server
        with connected(config) as conn:
            try:
                row = conn.execute(query, params).fetchone()
            except psycopg.errors.UniqueViolation:
                raise AlreadyQueued(
                    "a job with the same queueing lock is waiting already"
                ) from None
            except psycopg.OperationalError as exc:
                if not connection_lost(exc, conn):
                    raise
                lost = exc
            else:
                assert row is not None
                return [int(i) for i in row[0]]
        found = _queued_already(config, jobs, lost)
        if found is not None:
            return found
    raise JournalError(
        f"cannot queue the runs in the journal {config.where}: the connection was lost "
        f"twice as they were queued ({first_line(lost)}); nothing was queued"
    )


def _queued_already(
    config: StoreConfig, jobs: list[NewJob], lost: BaseException
) -> list[int] | None:
    """After a connection lost while `jobs` were queued: their ids if they
    were (found by task and arguments: a run's job names its run id, which
    no other job does; a resume is looked for among the jobs waiting or
    running, where its queueing lock allows one), None if none was. One
    statement queues them all or none: some found is a journal that changed
    under us, told as such."""
    found: list[int] = []
    try:
        with connected(config) as conn:
            for job in jobs:
                row = conn.execute(
                    "SELECT max(id) FROM procrastinate_jobs WHERE task_name = %s"
                    " AND args = %s::jsonb AND (args ? 'spec' OR status IN ('todo', 'doing'))",
                    (job.task, json.dumps(job.args)),
                ).fetchone()
                if row is not None and row[0] is not None:
                    found.append(int(row[0]))
    except JournalError as exc:
        raise JournalError(
            f"the connection to the queue in the journal {config.where} was lost as the runs "
            f"were queued ({first_line(lost)}), and whether they were cannot be told: {exc}. "
            "`runbook queue` lists the jobs waiting; queue again only those missing"
        ) from None
    if not found:
        return None
    if len(found) != len(jobs):
        raise JournalError(
            f"the queue in the journal {config.where} holds {len(found)} of the {len(jobs)} "
            "jobs queued in one statement whose connection was lost: `runbook queue` lists them"
        )
    return found


class AlreadyQueued(RunbookError):
    """A fire (its queueing lock) is waiting in the queue already: not queued twice."""


def job_status(config: StoreConfig, job: int) -> str | None:
    with connected(config) as conn:
        row = conn.execute(
            "SELECT status::text FROM procrastinate_jobs WHERE id = %s", (job,)
        ).fetchone()
    return str(row[0]) if row else None


@dataclass
class Job:
    id: int
    task: str
    status: str
    lock: str | None
    args: dict[str, Any]
    attempts: int
    worker: int | None
    heartbeat_age: float | None  # seconds since its worker's last heartbeat
    at: str  # when it was queued

    @property
    def run_id(self) -> str | None:
        found = self.args.get("run_id") or (self.args.get("spec") or {}).get("run_id")
        return str(found) if found else None


LIST = """
SELECT j.id, j.task_name, j.status::text, j.lock, j.args, j.attempts, j.worker_id,
       EXTRACT(EPOCH FROM now() - w.last_heartbeat)::float8 AS age,
       (SELECT min(e.at) FROM procrastinate_events e WHERE e.job_id = j.id)::text AS at
  FROM procrastinate_jobs j
  LEFT JOIN procrastinate_workers w ON w.id = j.worker_id
 WHERE j.status = ANY(%s::procrastinate_job_status[])
 ORDER BY j.id
 LIMIT %s
"""


def jobs(config: StoreConfig, statuses: tuple[str, ...], limit: int = 1000) -> list[Job]:
    with connected(config) as conn:
        rows = conn.execute(LIST, (list(statuses), limit)).fetchall()
    return [Job(r[0], r[1], r[2], r[3], r[4] or {}, r[5], r[6], r[7], r[8] or "") for r in rows]


STALLED = """
SELECT j.id FROM procrastinate_jobs j
  LEFT JOIN procrastinate_workers w ON w.id = j.worker_id
 WHERE j.status = 'doing'
   AND (j.worker_id IS NULL OR w.last_heartbeat < now() - make_interval(secs => %s))
"""


def take_stalled(config: StoreConfig, seconds: float) -> list[Job]:
    """The jobs of workers silent for `seconds` (or pruned), each moved out of
    `doing` by this call: of two reapers, one takes each job."""
    with connected(config) as conn:
        # One statement: a second reaper's UPDATE waits for the row, then finds
        # it no longer `doing` (PostgreSQL checks the condition again) and skips it.
        rows = conn.execute(
            f"UPDATE procrastinate_jobs SET status = 'failed' WHERE id IN ({STALLED})"
            " AND status = 'doing'"
            " RETURNING id, task_name, status::text, lock, args, attempts, worker_id",
            (seconds,),
        ).fetchall()
    return [Job(r[0], r[1], r[2], r[3], r[4] or {}, r[5], r[6], None, "") for r in rows]


def cancel_waiting(config: StoreConfig) -> int:
    """`runbook queue --drain`: every job not yet taken cancelled; how many."""
    with connected(config) as conn:
        cur = conn.execute(
            "UPDATE procrastinate_jobs SET status = 'cancelled' WHERE status = 'todo'"
        )
        return cur.rowcount
