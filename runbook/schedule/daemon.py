"""`runbook scheduler run`: ticks until told to stop.

It sleeps until the earliest slot due (or the next heartbeat, every few
seconds; a quarter second while runs go, to take up their ends), so an idle
scheduler costs next to nothing. SIGTERM and SIGINT stop it the same way:
every run going is interrupted as Ctrl-C interrupts it, and journaled, then
the scheduler's heartbeat says it stopped.
"""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import threading
from collections.abc import Callable
from types import FrameType

import psycopg

from runbook.errors import RunbookError
from runbook.redact import first_line
from runbook.schedule.tick import Scheduler

STOP_GRACE = 30.0  # seconds the runs get to journal their interruption
RETRY = 5.0  # seconds between attempts while the journal cannot be used


def serve(scheduler: Scheduler, log: Callable[[str], None], stop: threading.Event) -> None:
    """Tick until `stop` is set; then stop the runs going."""
    clock = scheduler.clock
    scheduler.beat(clock.now())
    while not stop.is_set():
        try:
            for line in scheduler.tick():
                log(line)
        except (RunbookError, psycopg.Error, sqlite3.Error, OSError) as exc:
            # The journal's server restarting, a full disk: a daemon outlives
            # them. It says so, waits, and connects again; the slots missed
            # meanwhile are decided (and paged) when it can write again.
            log(f"tick failed ({first_line(exc)}); trying again in {RETRY:g}s")
            stop.wait(RETRY)
            with contextlib.suppress(RunbookError, psycopg.Error, sqlite3.Error, OSError):
                scheduler.reopen()
            continue
        now = clock.now()
        pause = (scheduler.wake_at(now) - now).total_seconds()
        stop.wait(max(0.0, pause))
    try:
        for line in scheduler.stop(STOP_GRACE, clock.sleep):
            log(line)
    except (RunbookError, psycopg.Error, sqlite3.Error, OSError) as exc:
        log(f"the runs were interrupted, but the journal could not record the stop: {exc}")


def stop_on_signals(stop: threading.Event, log: Callable[[str], None]) -> None:
    """SIGTERM (systemd, kill) and SIGINT (Ctrl-C) set `stop`."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            log(f"{signal.Signals(signum).name}: stopping; interrupting the runs going")
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
