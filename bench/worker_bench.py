"""Queued runs taken by `runbook worker` processes, against the run service
called in-process.

    .venv/bin/python bench/worker_bench.py [--runs 500] [--workers 1,2,4] [--pgdata DIR]

On an embedded server of its own (`--pgdata`, shared with fleet_bench.py),
a project with a PostgreSQL journal (the queue lives in its database) and
ten targets, each a database; the playbook is a one-query check (the
interesting cost is the queue's, not the query's):

- **in-process**: `runbook.service.run` for one target, `--runs` times one
  after another: what a run costs without a queue (ms a run);
- **enqueue**: `runbook run -t ten --queue`'s work (`queue_cmd.enqueue`), in
  batches of ten, until `--runs` are queued (ms a run);
- **workers**: W `runbook worker` processes (concurrency 1 each) started and
  registered first, then the runs queued, timed until the journal has them
  all ended: throughput (runs/s) and the queue's overhead a run, which is
  W × wall / runs − the in-process time (fetching the job, its lock, the
  heartbeat, finishing it, a process's own interpreter).

Figures go to stdout as a Markdown table and into bench/results.json ("worker").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.fleet_bench import JOURNAL_DB, database, databases, server  # noqa: E402

TARGETS = 10


def project(root: Path, dsns: list[str], journal_dsn: str, schema: str) -> None:
    targets = "".join(f"  db{i}: {{dsn: {dsn!r}}}\n" for i, dsn in enumerate(dsns))
    members = ", ".join(f"db{i}" for i in range(len(dsns)))
    (root / "inventory.yaml").write_text(
        f"targets:\n{targets}groups:\n  ten: [{members}]\n"
        f"journal: {{dsn: {journal_dsn!r}, schema: {schema}}}\n"
    )
    (root / "playbooks").mkdir()
    (root / "playbooks" / "check.yaml").write_text(
        "name: check\nkind: check\nsteps:\n  - name: one\n    query: SELECT 1 AS one\n"
        "    register: r\n    gate: {that: r.first.one == 1}\n"
    )


def ended(journal_dsn: str, schema: str) -> int:
    import psycopg

    with psycopg.connect(journal_dsn) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM {schema}.runs WHERE status <> 'running'"
        ).fetchone()
    return int(row[0]) if row else 0


def workers_registered(journal_dsn: str, schema: str) -> int:
    import psycopg

    with psycopg.connect(journal_dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM {schema}_queue.procrastinate_workers").fetchone()
    return int(row[0]) if row else 0


def measure(pgdata: Path, runs: int, workers: int) -> dict[str, Any]:
    from runbook import report, service
    from runbook.commands import queue_cmd
    from runbook.pg.embedded import replace_database

    found = server(pgdata)
    databases(found, TARGETS)
    dsns = [str(found.database_dsn(database(i))) for i in range(TARGETS)]
    journal_dsn = replace_database(found.dsn, JOURNAL_DB)
    import psycopg

    with psycopg.connect(found.dsn, autocommit=True) as conn:
        if not conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (JOURNAL_DB,)
        ).fetchone():
            conn.execute(f"CREATE DATABASE {JOURNAL_DB}")
    schema = f"wb_{os.getpid()}_{workers}"
    with tempfile.TemporaryDirectory(prefix="worker-bench-") as folder:
        root = Path(folder)
        project(root, dsns, journal_dsn, schema)
        os.chdir(root)
        playbook = Path("playbooks/check.yaml")
        one = service.RunSpec(playbook=playbook, targets=("db0",), notify=False)
        service.run(one, report.SilentReporter)  # warm: imports, checks, the journal's schema
        started = time.perf_counter()
        for i in range(runs):
            service.run(
                service.RunSpec(playbook=playbook, targets=(f"db{i % TARGETS}",), notify=False),
                report.SilentReporter,
            )
        in_process = (time.perf_counter() - started) / runs
        from runbook.journal.store import config_for
        from runbook.queue import backend

        backend.ensure_schema(config_for(service.load_inventory(None, root)))
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "runbook", "worker"],
                cwd=root,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        try:
            while workers_registered(journal_dsn, schema) < workers:
                time.sleep(0.1)
            before = ended(journal_dsn, schema)
            started = time.perf_counter()
            spec = service.RunSpec(playbook=playbook, targets=("ten",), notify=False)
            for _ in range(runs // TARGETS):
                queue_cmd.enqueue(spec)
            enqueue = (time.perf_counter() - started) / runs
            while ended(journal_dsn, schema) < before + runs:
                time.sleep(0.05)
            wall = time.perf_counter() - started
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=60)
    return {
        "runs": runs,
        "workers": workers,
        "in_process_ms": round(in_process * 1000, 2),
        "enqueue_ms": round(enqueue * 1000, 2),
        "wall_s": round(wall, 2),
        "runs_per_s": round(runs / wall, 1),
        "overhead_ms": round((workers * wall / runs - in_process) * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--pgdata", type=Path, default=Path("/var/tmp/runbook-fleet-bench/pg"))
    args = parser.parse_args()
    rows = []
    print(
        "| runs | workers | in-process ms/run | enqueue ms/run | wall s | runs/s | queue overhead ms/run |"
    )
    print("|---|---|---|---|---|---|---|")
    for count in (int(w) for w in args.workers.split(",")):
        row = measure(args.pgdata, args.runs, count)
        rows.append(row)
        print(
            f"| {row['runs']} | {count} | {row['in_process_ms']} | {row['enqueue_ms']} "
            f"| {row['wall_s']} | {row['runs_per_s']} | {row['overhead_ms']} |",
            flush=True,
        )
    results = REPO / "bench" / "results.json"
    data = json.loads(results.read_text()) if results.exists() else {}
    data["worker"] = rows
    results.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
