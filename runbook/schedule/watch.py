"""What a scheduler watches besides its slots: its own runs going past their
`max_duration`, and the runs of schedulers that are gone (killed): their ends
taken up in the ledger, a fire whose run never began recorded lost and paged,
one of theirs past its max_duration paged here. Mixed into
runbook.schedule.tick.Scheduler.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Protocol

from runbook.clock import Clock, iso, parse_iso
from runbook.journal.events import Conflict
from runbook.journal.records import FireStatus, RunRecord
from runbook.journal.store import JournalStore
from runbook.outcome import RunStatus
from runbook.schedule import ledger, pager
from runbook.schedule.entries import Entry

BEGIN_WITHIN = 120.0  # seconds a started fire's process has to record its run
ENDED = (RunStatus.OK, RunStatus.GATE_FAILED)  # the routine ran: it did not fail to run


class RunProcess(Protocol):
    """What runs a fired slot: its own process (subprocess.Popen), or a job a
    worker takes (runbook.queue.dispatch.QueuedRun)."""

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int, /) -> None: ...


@dataclass
class Child:
    """A run this scheduler started, while its process goes."""

    entry: Entry
    fire_id: str
    run_id: str
    process: RunProcess
    started: float  # the clock's monotonic reading: a pinned clock (`tick --now`) still times it
    stderr: IO[bytes] | None = None
    over_time: bool = False  # paged already for running past max_duration


class Watching:
    if TYPE_CHECKING:
        children: list[Child]
        entries: list[Entry]
        journal: JournalStore
        pager: pager.Pager
        clock: Clock

    def settle_orphans(self, now: dt.datetime) -> list[str]:
        """Fires another scheduler started and can no longer take up (it was
        killed): the run's end goes to the ledger; a fire whose run never began
        is recorded as such, and paged. Conditional: two schedulers settle one once."""
        lines = []
        ours = {child.fire_id for child in self.children}
        by_pair = {entry.pair: entry for entry in self.entries}
        # Every started fire not settled yet, however many settled ones are newer
        # (the latest 200 started fires, settled or not, once hid an older orphan).
        unsettled = self.journal.fires(status=FireStatus.STARTED.value, unsettled=True, limit=None)
        for fire in unsettled:
            if fire.id in ours or not fire.run_id:
                continue
            run = self.journal.run(fire.run_id)
            entry = by_pair.get((fire.playbook_path, fire.schedule, fire.target))
            if run is not None and run.status is RunStatus.RUNNING:
                # Its process goes on (on this host or another); past its
                # max_duration it is paged here too, once (while open).
                lines += self._over_time_elsewhere(entry, run, now)
                continue
            age = (now - parse_iso(fire.claimed_at)).total_seconds()
            if run is None and age < BEGIN_WITHIN:
                continue  # its process may still be starting
            expect = {"status": FireStatus.STARTED.value, "run_status": None}
            if run is not None:
                change = ledger.update_event(
                    fire.id, iso(now), expect, ended_at=iso(now), run_status=run.status.value
                )
            else:
                why = f"lost: {fire.scheduler} claimed it and stopped before its run began"
                change = ledger.update_event(
                    fire.id, iso(now), expect, status=FireStatus.ERROR.value, reason=why,
                    ended_at=iso(now),
                )  # fmt: skip
            try:
                self.journal.append([change])
            except Conflict:
                continue  # settled by another scheduler meanwhile
            if run is None and entry is not None:
                message = f"{fire.playbook} did not run on {fire.target}: {why}"
                lines.append(
                    self.pager.page(entry, pager.missed_key(entry), message, "did not run")
                )
            elif run is not None:
                lines.append(f"fire {fire.id}: its run {run.id} ended {run.status.value}")
                if entry is not None and run.status in ENDED:
                    self.pager.recovered(entry, run.id, _took_too_long(entry, run))
        return lines

    def _over_time_elsewhere(
        self, entry: Entry | None, run: RunRecord, now: dt.datetime
    ) -> list[str]:
        limit = entry.spec.schedule.max_duration if entry is not None else None
        if entry is None or limit is None:
            return []
        if (now - parse_iso(run.started_at)).total_seconds() <= limit:
            return []
        if self.journal.open_incident(pager.overtime_key(entry)) is not None:
            return []
        where = f"{entry.playbook.name} on {entry.target}"
        message = f"run {run.id} of {where} is still going after its max_duration"
        return [self.pager.page(entry, pager.overtime_key(entry), message, "over time")]

    def _check_durations(self, now: dt.datetime) -> list[str]:
        lines = []
        for child in self.children:
            limit = child.entry.spec.schedule.max_duration
            if limit is None or child.over_time:
                continue
            if self.clock.monotonic() - child.started > limit:
                child.over_time = True
                where = f"{child.entry.playbook.name} on {child.entry.target}"
                message = f"run {child.run_id} of {where} is still going after its max_duration"
                lines.append(
                    self.pager.page(
                        child.entry, pager.overtime_key(child.entry), message, "over time"
                    )
                )
        return lines


def _took_too_long(entry: Entry, run: RunRecord) -> bool:
    limit = entry.spec.schedule.max_duration
    if limit is None or run.ended_at is None:
        return False
    return (parse_iso(run.ended_at) - parse_iso(run.started_at)).total_seconds() > limit
