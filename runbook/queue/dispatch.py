"""The scheduler's fires as queued runs (`scheduler: {dispatch: queue}`).

The fire ledger stays the source of truth: a scheduler enqueues a slot only
after its ledger row was appended (of two schedulers, the second gets
Conflict and enqueues nothing), and the job's queueing_lock is the fire's id,
so a fire waits in the queue once. The scheduler follows the run as it
follows a process of its own: `QueuedRun.poll` reads the run's end from the
journal (and a job cancelled or lost before its run began as an error).
"""

from __future__ import annotations

import os
from typing import Any

import psycopg

from runbook.journal.store import StoreConfig
from runbook.queue import backend
from runbook.schedule.launch import Launched
from runbook.service import RunSpec


class QueuedRun:
    """A fired run a worker takes: what the scheduler's Child needs of a process."""

    def __init__(self, config: StoreConfig, job: int, run_id: str) -> None:
        self.config = config
        self.job = job
        self.run_id = run_id

    def poll(self) -> int | None:
        from runbook.journal.store import open_store
        from runbook.outcome import RunStatus

        journal = open_store(self.config, create=False)
        try:
            run = journal.run(self.run_id)
        finally:
            journal.close()
        if run is not None:
            if run.status in (RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL):
                return None
            return run.exit_code if run.exit_code is not None else 3
        status = backend.job_status(self.config, self.job)
        if status in ("todo", "doing", None):
            return None  # waiting for a worker (or taken a moment ago)
        return 3  # cancelled (drained) or failed before its run began

    def send_signal(self, sig: int, /) -> None:
        """A stopping scheduler leaves queued runs to their workers."""


def launcher(config: StoreConfig, root: str) -> Any:
    """`launch(spec, delay)` for runbook.schedule.tick.Scheduler: enqueue the fire."""
    backend.ensure_schema(config)

    def launch(spec: RunSpec, delay: float) -> Launched:
        data = spec.to_dict()
        data["playbook"] = os.path.relpath(spec.playbook, root)
        data["inventory"] = None
        fire = spec.fire or {}
        target = spec.targets[0]
        new = backend.NewJob(
            backend.RUN_TASK,
            {"spec": data},
            backend.lock_of(data["playbook"], target),
            f"fire:{fire.get('id') or spec.run_id}",
        )
        try:
            [job] = backend.enqueue(config, [new])
        except (psycopg.Error, backend.AlreadyQueued) as exc:
            raise OSError(f"could not queue the run: {exc}") from None
        assert spec.run_id is not None
        return Launched(QueuedRun(config, job, spec.run_id))

    return launch
