"""Runs whose process died (kill -9, power cut) are marked interrupted.

A run records its host, pid and the pid's start time; if that process is gone,
the run cannot still be going. Its in-flight steps are marked failed with the
reason, so the journal shows where it stopped.
"""

from __future__ import annotations

import socket
from typing import Any

from runbook.clock import Clock, iso
from runbook.journal.recorder import process_started
from runbook.journal.records import RunRecord, StepRecord
from runbook.journal.store import JournalStore
from runbook.outcome import RunStatus, Status


def alive(pid: int | None, started: float | None) -> bool:
    if pid is None:
        return False
    now_started = process_started(pid)
    if now_started is None:
        return False
    # The same pid with another start time is another process.
    return started is None or abs(now_started - started) < 1.0


def statements_ended(counted: Any) -> str:
    """How far an autocommit step of several statements had got (each ended
    one committed on its own), as its last progress record says (`statements`)."""
    if not isinstance(counted, dict):
        return ""
    done, total = counted.get("done", 0), counted.get("total", 0)
    return (
        f"; {done} of its {total} statements had ended (committed, they stay done), "
        f"statement {done + 1} may or may not have"
    )


def last_seen(run: RunRecord, steps: list[StepRecord]) -> str | None:
    """The latest time a run's records show it alive: its start, a step's
    start or end (the clock's ISO form throughout, so they sort as text)."""
    times = [run.started_at, *(t for s in steps for t in (s.started_at, s.ended_at))]
    return max((t for t in times if t), default=None)


def mark_dead_runs(journal: JournalStore, clock: Clock) -> list[str]:
    """Mark dead runs of this host interrupted; returns their ids."""
    host = socket.gethostname()
    dead = []
    for run in journal.running_on(host):
        if alive(run.pid, run.pid_started):
            continue
        mark_interrupted(journal, run, f"the runbook process (pid {run.pid}) is gone", clock)
        dead.append(run.id)
    return dead


def mark_interrupted(journal: JournalStore, run: RunRecord, gone: str, clock: Clock) -> None:
    """Record that `run` stopped where it was because `gone` (its process, or
    the worker on another host that ran it): steps caught mid-flight failed,
    or unknown if they could not be transactional. The run and those steps
    end when it was last seen alive (its latest record), not when this found
    it gone: that may be days later, and its duration would say it ran on."""
    at = iso(clock.now())
    recorded = journal.steps(run.id)
    last = last_seen(run, recorded) or at
    steps = [s for s in recorded if s.status is Status.RUNNING]
    reason = f"interrupted: {gone}"
    # The step it was in is the last one started that had not finished.
    current = next((s for s in reversed(steps) if not s.ended_at), steps[-1] if steps else None)
    where = f" during step {current.number} {current.name!r}" if current else ""
    events: list[tuple[str, str | None, str, dict[str, Any]]] = []
    for s in steps:
        why, status = reason, Status.FAILED
        if s.ended_at:  # finished, waiting for its block's COMMIT
            why = f"interrupted before its transaction committed: {gone}"
        elif s.outside:  # outside any transaction: it may have acted
            status = Status.UNKNOWN
            why = f"{reason}{statements_ended(s.statements)} — outcome unknown: it cannot be transactional"
        row = {
            "run_id": run.id,
            "seq": s.seq,
            "status": status.value,
            "reason": why,
            "error": why,
            "ended_at": s.ended_at or last,
        }
        events.append(
            (at, run.id, "step.interrupted", {"table": "steps", "op": "update", "row": row})
        )
    events.append(
        (
            at,
            run.id,
            "run.interrupted",
            {
                "table": "runs",
                "op": "update",
                "row": {
                    "id": run.id,
                    "status": RunStatus.INTERRUPTED.value,
                    "ended_at": last,
                    "exit_code": 130,
                    "reason": reason + where,
                },
            },
        )
    )
    journal.append(events)
