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
from pathlib import Path
from typing import Any

import psycopg

from runbook.journal.store import JournalStore, StoreConfig, open_store
from runbook.queue import backend
from runbook.schedule.launch import Launched
from runbook.service import RunSpec


class QueuedRun:
    """A fired run a worker takes: what the scheduler's Child needs of a process."""

    def __init__(self, config: StoreConfig, job: int, run_id: str) -> None:
        self.config = config
        self.job = job
        self.run_id = run_id
        self._journal: JournalStore | None = None  # opened at the first poll, kept till the end
        self._code: int | None = None

    def poll(self) -> int | None:
        """None while it waits or runs; its exit code once it ended (3: never began)."""
        if self._code is None:
            self._code = self._ended()
            if self._code is not None and self._journal is not None:
                self._journal.close()
        return self._code

    def _ended(self) -> int | None:
        from runbook.outcome import RunStatus

        if self._journal is None:
            self._journal = open_store(self.config, create=False)
        run = self._journal.run(self.run_id)
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


def job_for(spec: RunSpec, root: Path, queueing_lock: str | None = None) -> backend.NewJob:
    """The job of a run queued for one target: its spec with the playbook's path
    relative to the project and no inventory (a worker runs its own checkout's),
    locked to its (playbook, target)."""
    data = spec.to_dict()
    data["playbook"] = os.path.relpath(spec.playbook, root)
    data["inventory"] = None
    lock = backend.lock_of(data["playbook"], spec.targets[0])
    return backend.NewJob(backend.RUN_TASK, {"spec": data}, lock, queueing_lock)


def launcher(config: StoreConfig, root: Path) -> Any:
    """`launch(spec, delay)` for runbook.schedule.tick.Scheduler: enqueue the fire."""
    backend.ensure_schema(config)

    def launch(spec: RunSpec, delay: float) -> Launched:
        new = job_for(spec, root, f"fire:{(spec.fire or {}).get('id') or spec.run_id}")
        try:
            [job] = backend.enqueue(config, [new])
        except (psycopg.Error, backend.AlreadyQueued) as exc:
            raise OSError(f"could not queue the run: {exc}") from None
        assert spec.run_id is not None
        return Launched(QueuedRun(config, job, spec.run_id))

    return launch
