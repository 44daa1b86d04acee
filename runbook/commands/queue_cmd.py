"""`runbook run --queue`, `runbook queue` and `runbook worker`: runs queued in
the journal's PostgreSQL database and taken by workers (runbook.queue)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook import service
from runbook.journal.store import config_for
from runbook.queue import backend, dispatch
from runbook.queue.worker import Settings, work, worker_name


@dataclass
class Queued:
    target: str
    run_id: str
    job: int


def enqueue(spec: service.RunSpec) -> tuple[str | None, list[Queued]]:
    """Each target's run queued, everything checked first (nothing is queued
    for a playbook that would not run); the fleet id if several, and the runs."""
    prepared = service.prepare(spec)
    inventory = prepared.inventory
    config = config_for(inventory)
    backend.require_postgres(config)
    backend.ensure_schema(config)
    fleet = service.new_run_id() if len(prepared.targets) > 1 else None
    runs: list[tuple[str, str, backend.NewJob]] = []
    for target in prepared.targets:
        run_id = service.new_run_id()
        one = dataclasses.replace(
            spec,
            playbook=prepared.playbook.path,
            targets=(target.name,),
            run_id=run_id,
            attended=False,  # nobody at a terminal: a protected target needs an authorization
            operator=spec.operator or service.operator(),
            fleet=fleet,
            forks=None,
            limit=(),
        )
        runs.append((target.name, run_id, dispatch.job_for(one, inventory.root)))
    ids = backend.enqueue(config, [job for _, _, job in runs])  # all of them, or none
    return fleet, [
        Queued(name, run_id, job) for (name, run_id, _), job in zip(runs, ids, strict=True)
    ]


def listing(inventory_path: Path | None, stalled_after: float = 30.0) -> list[dict[str, Any]]:
    """Jobs waiting and running, with which run and worker, and whether stuck
    (running on a worker silent for `stalled_after` seconds)."""
    inventory = service.load_inventory(inventory_path, Path.cwd())
    config = config_for(inventory)
    backend.require_postgres(config)
    backend.ensure_schema(config)
    rows = []
    for job in backend.jobs(config, ("todo", "doing")):
        spec = job.args.get("spec") or {}
        stuck = job.status == "doing" and (
            job.worker is None or (job.heartbeat_age or 0) > stalled_after
        )
        rows.append(
            {
                "job": job.id,
                "status": "stuck" if stuck else {"todo": "queued", "doing": "running"}[job.status],
                "task": job.task,
                "playbook": spec.get("playbook"),
                "target": (spec.get("targets") or [None])[0],
                "run_id": job.run_id,
                "worker": job.worker,
                "heartbeat_age_s": None
                if job.heartbeat_age is None
                else round(job.heartbeat_age, 1),
                "queued_at": job.at,
            }
        )
    return rows


def drain(inventory_path: Path | None) -> int:
    inventory = service.load_inventory(inventory_path, Path.cwd())
    config = config_for(inventory)
    backend.require_postgres(config)
    return backend.cancel_waiting(config)


def run_worker(
    inventory_path: Path | None,
    concurrency: int,
    queues: tuple[str, ...],
    say: Callable[[str], None],
    heartbeat: float = 10.0,
    stalled_after: float = 30.0,
) -> int:
    inventory = service.load_inventory(inventory_path, Path.cwd())
    config = config_for(inventory)
    backend.require_postgres(config)
    os.chdir(inventory.root)  # job paths are the project's
    settings = Settings(
        root=inventory.root,
        inventory=inventory.path,
        config=config,
        concurrency=concurrency,
        queues=queues,
        heartbeat=heartbeat,
        stalled_after=stalled_after,
        name=worker_name(),
    )
    return work(settings, say)
