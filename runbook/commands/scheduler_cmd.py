"""`runbook scheduler run | tick | status | fire` and `runbook schedule disable | enable`."""

from __future__ import annotations

import datetime as dt
import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from runbook import service
from runbook.clock import Clock, FixedClock, iso, parse_iso
from runbook.errors import ExitCode, UsageError
from runbook.journal.records import HeartbeatRecord
from runbook.schedule import daemon, ledger
from runbook.schedule.entries import entries_of, relative
from runbook.schedule.launch import launch
from runbook.schedule.tick import Launch, Scheduler

STALE = 60.0  # seconds: a scheduler that has not ticked within this is not watching

Log = Callable[[str], None]


def _clock(now: str | None) -> Clock:
    if now is None:
        return Clock.from_environment()
    try:
        return FixedClock(parse_iso(now))
    except ValueError:
        raise UsageError(f"--now {now!r}: give an ISO time, e.g. 2026-12-04T08:00:00Z") from None


def launcher_for(inventory_path: Path | None) -> Launch:
    """How fired runs start: a process each here, or queued for `runbook worker`
    (`scheduler: {dispatch: queue}`, with a PostgreSQL journal)."""
    from runbook import service
    from runbook.journal.store import config_for

    inventory = service.load_inventory(inventory_path, Path.cwd())
    if inventory.scheduler_dispatch != "queue":
        return launch
    from runbook.queue import backend, dispatch

    config = config_for(inventory)
    backend.require_postgres(config)
    launcher: Launch = dispatch.launcher(config, inventory.root)
    return launcher


def run(inventory: Path | None, log: Log) -> int:
    """The daemon, in the foreground, until SIGTERM or Ctrl-C."""
    scheduler = Scheduler(inventory, Clock.from_environment(), launcher_for(inventory))
    stop = threading.Event()
    daemon.stop_on_signals(stop, log)
    log(
        f"scheduler {scheduler.id}: {len(scheduler.entries)} schedule(s) x target, "
        f"journal {scheduler.journal.where}"
    )
    try:
        daemon.serve(scheduler, log, stop)
    finally:
        scheduler.close()
    log("scheduler stopped")
    return 0


def tick(inventory: Path | None, now: str | None, log: Log) -> int:
    """One pass at `now`; the runs it starts are waited for, so that the pass
    is whole when it returns (cron calls it every minute)."""
    clock = _clock(now)
    scheduler = Scheduler(inventory, clock, launcher_for(inventory))
    try:
        for line in scheduler.tick(clock.now()):
            log(line)
        while scheduler.children:
            time.sleep(0.1)
            for line in scheduler.reap(clock.now()):
                log(line)
        scheduler.beat(clock.now(), stopped=True)
    finally:
        scheduler.close()
    return 0


def status(inventory: Path | None) -> tuple[list[dict[str, Any]], bool]:
    """Every scheduler's heartbeat, and whether one ticked within a minute."""
    journal = service.open_journal(service.load_inventory(inventory, Path.cwd()))
    try:
        beats = journal.heartbeats()
    finally:
        journal.close()
    now = Clock.from_environment().now()
    rows = [_beat_row(beat, now) for beat in beats]
    return rows, any(row["alive"] for row in rows)


def _beat_row(beat: HeartbeatRecord, now: dt.datetime) -> dict[str, Any]:
    age = (now - parse_iso(beat.last_tick)).total_seconds()
    return {
        **beat.as_dict(),
        "seconds_since_tick": round(age, 1),
        "alive": beat.stopped_at is None and age <= STALE,
    }


def render_status(rows: list[dict[str, Any]], alive: bool) -> list[str]:
    if not rows:
        return ["CRITICAL: no scheduler has ever ticked on this journal"]
    head = (
        "OK: a scheduler ticked within a minute"
        if alive
        else f"CRITICAL: no scheduler has ticked within {STALE:g}s"
    )
    lines = [head]
    for row in rows:
        state = "stopped" if row["stopped_at"] else "running" if row["alive"] else "silent"
        lines.append(
            f"  {row['host']:<20} pid {row['pid']:<8} {state:<8} last tick {row['last_tick']} "
            f"({row['seconds_since_tick']:g}s ago)  {row['note'] or ''}".rstrip()
        )
    return lines


def status_code(alive: bool, exit_codes: str) -> int:
    if exit_codes == "nagios":
        return 0 if alive else 2  # OK / CRITICAL
    return int(ExitCode.OK) if alive else int(ExitCode.GATE_FAILED)


def fire(text: str, make_reporter: Any, notifier_for: Any) -> int:
    """The process of one scheduled run (runbook.schedule.launch): SIGTERM is
    Ctrl-C here, so the run is interrupted and journaled, not cut off."""
    try:
        data = json.loads(text)
        spec = service.RunSpec.from_dict(data["spec"])
        delay = float(data.get("delay") or 0.0)
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"scheduler fire: not a run spec: {exc}") from None

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    if delay > 0:
        time.sleep(delay)  # the slot's jitter: its key stays the slot's
    outcomes = service.run(spec, make_reporter, None, notifier_for)
    return service.exit_code(outcomes, spec.exit_codes)


def pause(
    playbook_ref: str, targets: tuple[str, ...], inventory: Path | None, paused: bool, reason: str
) -> list[str]:
    """Disable (or enable) a playbook's schedules on some targets, or all: journaled."""
    from runbook.commands.schedule_cmd import find_playbook

    if not reason.strip():
        raise UsageError("--reason: say why (it is journaled)")
    path = find_playbook(playbook_ref, inventory)
    loaded_inventory, playbook, _ = service.load_checked(path, inventory)
    scheduled = sorted({e.target for e in entries_of(playbook, loaded_inventory)})
    if not scheduled:
        raise UsageError(f"{playbook.name} has no schedule")
    unknown = sorted(set(targets) - set(scheduled))
    if unknown:
        raise UsageError(
            f"{playbook.name} is not scheduled on {', '.join(unknown)}; "
            f"its scheduled targets: {', '.join(scheduled)}"
        )
    where = relative(playbook.path.resolve(), loaded_inventory.root.resolve())
    now = iso(Clock.from_environment().now())
    by = service.operator()
    events = [
        ledger.pause_event(playbook.name, where, target, paused, by, now, reason)
        for target in (targets or (ledger.ALL_TARGETS,))
    ]
    journal = service.open_journal(loaded_inventory)
    try:
        journal.append(events)
    finally:
        journal.close()
    verb = "disabled" if paused else "enabled"
    on = ", ".join(targets) if targets else f"all its targets ({', '.join(scheduled)})"
    return [f"{playbook.name}: schedules {verb} on {on} by {by}: {reason}"]
