"""Jobs queued over a connection lost as the statement goes out: through a
loopback proxy to the real server, which passes the statement on and loses
the server's answer (the jobs are queued: queued again, a run would run
twice), or loses the statement (they are not: they are queued once more),
or after which no new connection is let through (whether they were cannot
be told: said so, with what to do)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from runbook.errors import JournalError
from runbook.journal.store import StoreConfig
from runbook.queue import backend

from ..conftest import Project
from ..lostreply import READY, Proxy

pytestmark = pytest.mark.parametrize("journal_backend", ["postgresql"])

DEFER = b"procrastinate_defer_jobs_v1"


@pytest.fixture
def proxy(journal_dsn: str) -> Iterator[Proxy]:
    found = Proxy(conninfo_to_dict(journal_dsn))
    backend.ensure_schema(StoreConfig("postgresql", dsn=journal_dsn))
    yield found
    found.listener.close()


def _jobs(dsn: str) -> list[tuple[int, str, str]]:
    """(id, task, run id) of every job in the queue."""
    with psycopg.connect(dsn, options="-c search_path=runbook_queue") as conn:
        rows = conn.execute(
            "SELECT id, task_name, coalesce(args->'spec'->>'run_id', args->>'run_id')"
            " FROM procrastinate_jobs ORDER BY id"
        ).fetchall()
    return [(int(i), str(t), str(r)) for i, t, r in rows]


def _run_job(run_id: str) -> backend.NewJob:
    spec = {"playbook": "playbooks/p.yaml", "targets": ["db"], "run_id": run_id}
    return backend.NewJob(backend.RUN_TASK, {"spec": spec}, f"playbooks/p.yaml@{run_id}")


@pytest.mark.parametrize("cut", ["lose_reply", "lose_request"])
def test_jobs_whose_connection_is_lost_are_queued_once(
    proxy: Proxy, journal_dsn: str, cut: str
) -> None:
    config = StoreConfig("postgresql", dsn=proxy.dsn())
    proxy.arm(cut, on=DEFER, done=READY)
    ids = backend.enqueue(config, [_run_job("r-one"), _run_job("r-two")])
    assert proxy.cuts == 1
    jobs = _jobs(journal_dsn)
    assert [run for _, _, run in jobs] == ["r-one", "r-two"]  # each once, not twice
    assert ids == [job for job, _, _ in jobs]


def test_a_resume_whose_answer_is_lost_is_found_among_the_waiting_jobs(
    proxy: Proxy, journal_dsn: str
) -> None:
    """A resume names only its run, which earlier resumes (done) named too:
    it is looked for among the jobs waiting or running."""
    direct = StoreConfig("postgresql", dsn=journal_dsn)
    resume = backend.NewJob(backend.RESUME_TASK, {"run_id": "r-x"}, "r-x", "resume:r-x")
    [old] = backend.enqueue(direct, [resume])
    with psycopg.connect(journal_dsn, options="-c search_path=runbook_queue") as conn:
        conn.execute("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = %s", (old,))
    proxy.arm("lose_reply", on=DEFER, done=READY)
    [new] = backend.enqueue(StoreConfig("postgresql", dsn=proxy.dsn()), [resume])
    assert proxy.cuts == 1
    assert new != old and [job for job, _, _ in _jobs(journal_dsn)] == [old, new]


def test_whether_jobs_were_queued_cannot_be_told_without_a_new_connection(
    proxy: Proxy, journal_dsn: str
) -> None:
    config = StoreConfig("postgresql", dsn=proxy.dsn())
    proxy.arm("lose_reply", on=DEFER, done=READY, refuse_after=True)
    with pytest.raises(JournalError) as raised:
        backend.enqueue(config, [_run_job("r-one")])
    said = str(raised.value)
    assert "whether they were cannot be told" in said and "runbook queue" in said
    assert len(_jobs(journal_dsn)) == 1  # it was: the operator is told to look


def test_run_queue_whose_answer_is_lost_queues_each_run_once(
    project: Project, proxy: Proxy, journal_dsn: str
) -> None:
    """The real CLI in a process of its own: exit 0, the runs it names are
    the jobs queued, each once, and nothing stray on stderr."""
    project.write(
        "inventory.yaml",
        f"targets:\n  t0: {{dsn: {project.dsn!r}}}\n  t1: {{dsn: {project.dsn!r}}}\n"
        "groups:\n  all: [t0, t1]\n",
    )
    project.playbook("name: p\nkind: check\nsteps:\n  - {name: a, query: SELECT 1}\n", "p.yaml")
    proxy.arm("lose_reply", on=DEFER, done=READY)
    done = subprocess.run(
        [sys.executable, "-m", "runbook", "run", "playbooks/p.yaml", "-t", "all", "--queue"],
        cwd=project.root,
        env={**os.environ, "RUNBOOK_JOURNAL": proxy.dsn()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert proxy.cuts == 1
    assert done.stderr.strip() == ""
    said = [
        line.split("run ")[1].split()[0] for line in done.stdout.splitlines() if " queued " in line
    ]
    jobs = _jobs(journal_dsn)
    assert len(said) == 2 and sorted(run for _, _, run in jobs) == sorted(said)
    assert json.loads(project.run("queue", "--format", "json").output)[0]["status"] == "queued"
