"""Drills whose process died (kill -9, a power cut): marked interrupted, their
copies dropped.

A drill records its host, pid and the pid's start time. One still `copying`
or `running` on this host whose process is gone cannot be going on: its runs
are reconciled like any run (runbook.journal.reconcile), its copy — found by
its name and dropped only if it carries the drill's mark — is dropped unless
the drill was asked to keep it, and the drill is marked interrupted, saying so.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import psycopg

from runbook.clock import Clock, iso
from runbook.drill import copy as copies
from runbook.errors import RunbookError
from runbook.journal import reconcile
from runbook.journal.records import DrillRecord
from runbook.journal.store import JournalStore
from runbook.model import Inventory

GOING = ("copying", "running")


def dead_drills(journal: JournalStore, inventory: Inventory, clock: Clock) -> list[str]:
    """Mark this host's drills whose process is gone interrupted; what was done."""
    host = socket.gethostname()
    lines: list[str] = []
    reconcile.mark_dead_runs(journal, clock)
    # Every drill still going, not among the latest 200 only (an older one was never reconciled).
    for drill in journal.drills(statuses=GOING, limit=None):
        if drill.host != host:
            continue
        if reconcile.alive(drill.pid, drill.pid_started):
            continue
        dropped = "" if drill.kept else _drop(drill, inventory)
        reason = f"interrupted: the drill's process (pid {drill.pid}) is gone{dropped}"
        row: dict[str, Any] = {
            "id": drill.id,
            "status": "interrupted",
            "ended_at": iso(clock.now()),
            "reason": reason,
        }
        change = {"table": "drills", "op": "update", "row": row, "expect": {"status": drill.status}}
        with contextlib.suppress(RunbookError):
            journal.append([(iso(clock.now()), None, "drill.interrupted", change)])
            lines.append(f"drill {drill.id}: {reason}")
    return lines


def _drop(drill: DrillRecord, inventory: Inventory) -> str:
    """Drop the dead drill's copy; a few words for the reason."""
    try:
        dsn, _ = copies.source(inventory.targets[drill.target], inventory.root)
        server = "embedded" if drill.copy_method == "dump" else "same"
        copy = copies.Copy(
            drill.copy_db, server, drill.copy_method, copies.mark_of(drill.id, drill.target)
        )
        copies.drop(copy, dsn, inventory.root)
    except (RunbookError, psycopg.Error, KeyError) as exc:
        return f"; its copy {drill.copy_db} could not be dropped: {exc}"
    return f"; its copy {drill.copy_db} was dropped"
