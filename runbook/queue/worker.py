"""`runbook worker`: takes queued runs and runs them through the run service.

procrastinate's worker fetches a job (its `lock` keeps one run of a
playbook on a target going at a time across all workers) and calls our task
on a thread. The task runs the job's RunSpec with the run id chosen when it
was queued: the journal takes that id's `run.start` once, so a job fetched
twice runs once. Paths in a job are relative to the project (the inventory's
folder): each host's worker runs in its own checkout of the project.

Alongside, the reaper: a job whose worker stopped sending heartbeats is taken
out of `doing` (by one reaper only), its run marked interrupted in the
journal, then resumed by another worker through the exactly-once resume, or
left for a person (`on_worker_loss: halt`).

SIGTERM or SIGINT: no new job is taken; each running run is interrupted as
Ctrl-C would (its statement cancelled, the run journaled interrupted); the
worker then leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook.clock import Clock
from runbook.fleet.fanout import Sessions
from runbook.journal.events import Conflict
from runbook.journal.reconcile import mark_interrupted
from runbook.journal.store import StoreConfig, open_store
from runbook.outcome import RunStatus
from runbook.queue import backend


@dataclass
class Settings:
    root: Path  # the project: where job paths are relative to
    inventory: Path | None
    config: StoreConfig
    concurrency: int = 1
    queues: tuple[str, ...] = ()
    heartbeat: float = 10.0  # seconds between a worker's heartbeats
    stalled_after: float = 30.0  # a worker silent this long is dead
    name: str = ""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_job(settings: Settings, sessions: Sessions, job_id: int, spec: dict[str, Any]) -> int:
    """One queued run: its RunSpec, paths taken from the project root."""
    from runbook import report, service
    from runbook.commands.notifications import notifier_for

    data = dict(spec)
    data["playbook"] = str(settings.root / data["playbook"])
    data["inventory"] = str(settings.inventory) if settings.inventory else None
    data["queued"] = {"job": job_id, "worker": settings.name}
    request = service.RunSpec.from_dict(data)
    try:
        outcomes = service.run(
            request, report.SilentReporter, notifier_for=notifier_for, interrupts=sessions
        )
    except Conflict:
        return 0  # its run id is in the journal already: another worker took it
    return service.exit_code(outcomes, "default")


def resume_job(settings: Settings, sessions: Sessions, run_id: str) -> int:
    """A run whose worker died, resumed: committed steps are not run again."""
    from runbook import report
    from runbook.commands import resume
    from runbook.commands.notifications import notifier_for
    from runbook.errors import UsageError

    try:
        outcomes = resume.resume(
            run_id,
            settings.inventory,
            (),
            False,
            True,
            report.SilentReporter,
            None,
            notifier_for,
            interrupts=sessions,
        )
    except (Conflict, UsageError):
        return 0  # resumed already (its claim is taken), or nothing left to resume
    return max((o.exit_code for o in outcomes), default=0)


def reap(settings: Settings, clock: Clock) -> list[str]:
    """Jobs of dead workers: their runs marked interrupted, then resumed or
    halted as the playbook says. Returns what was done, for the log."""
    from runbook.load import loader

    done: list[str] = []
    taken = backend.take_stalled(settings.config, settings.stalled_after)
    if not taken:
        return done
    journal = open_store(settings.config)
    try:
        for job in taken:
            run_id = job.run_id
            run = journal.run(run_id) if run_id else None
            if run is None:
                done.append(f"job {job.id}: its worker died before its run started")
                continue
            gone = f"its worker (job {job.id}) stopped sending heartbeats"
            if run.status is RunStatus.RUNNING:
                mark_interrupted(journal, run, gone, clock)
            policy = "halt"  # unless the playbook is found and says resume
            where = (job.args.get("spec") or {}).get("playbook") or run.playbook_path
            if where:
                playbook, _ = loader.load_playbook(settings.root / where)
                policy = playbook.after_worker_loss if playbook is not None else "halt"
            if policy == "resume":
                with contextlib.suppress(backend.AlreadyQueued):  # one waiting resume is enough
                    resume = backend.NewJob(
                        backend.RESUME_TASK,
                        {"run_id": run.id},
                        job.lock or run.id,
                        f"resume:{run.id}",
                    )
                    backend.enqueue(settings.config, [resume])
                done.append(f"run {run.id}: {gone}; resumed by the next free worker")
            else:
                done.append(f"run {run.id}: {gone}; on_worker_loss: halt — runbook resume {run.id}")
    finally:
        journal.close()
    return done


def work(settings: Settings, say: Callable[[str], None]) -> int:
    """Take jobs until SIGTERM or SIGINT; returns the exit code."""
    backend.ensure_schema(settings.config)
    app = backend.app_for(settings.config)
    sessions = Sessions()

    def _run(context: Any, spec: dict[str, Any]) -> int:
        return run_job(settings, sessions, context.job.id, spec)

    def _resume(context: Any, run_id: str) -> int:
        return resume_job(settings, sessions, run_id)

    app.task(name=backend.RUN_TASK, pass_context=True)(_run)
    app.task(name=backend.RESUME_TASK, pass_context=True)(_resume)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()

        def stop() -> None:
            if not stopping.is_set():
                say("stopping: running runs are interrupted and journaled")
                sessions.interrupt()
                stopping.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        async with app.open_async():
            worker = asyncio.create_task(
                app.run_worker_async(
                    queues=list(settings.queues) or None,
                    concurrency=settings.concurrency,
                    name=settings.name,
                    install_signal_handlers=False,
                    update_heartbeat_interval=settings.heartbeat,
                    stalled_worker_timeout=settings.stalled_after,
                    shutdown_graceful_timeout=30,
                    fetch_job_polling_interval=1.0,
                )
            )
            reaper = asyncio.create_task(reap_forever(settings, say, stopping))
            await stopping.wait()
            worker.cancel()  # graceful: the interrupted runs end first
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper

    say(f"worker {settings.name}: taking runs (concurrency {settings.concurrency})")
    asyncio.run(main())
    return 0


async def reap_forever(
    settings: Settings, say: Callable[[str], None], stopping: asyncio.Event
) -> None:
    clock = Clock()
    while not stopping.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=settings.heartbeat)
        if stopping.is_set():
            return
        try:
            done = await asyncio.to_thread(reap, settings, clock)
        except Exception as exc:  # the reaper never stops the worker
            say(f"reaper: {exc}")
            continue
        for line in done:
            say(line)
