"""One scheduler: the project's schedules, its journal, the runs it started.

`Scheduler.tick(now)` is one pass: take up the runs that ended, start queued
slots whose turn came, decide every (schedule, target) that has a slot due
(runbook.schedule.decide), claim by inserting the ledger rows (the insert that
conflicts lost the slot to another scheduler: nothing runs here), start the
claimed runs, page for missed and over-long ones, run the escalation tick and
record the heartbeat. The daemon (runbook.schedule.daemon) calls it in a loop;
`runbook scheduler tick` once.

Each run is its own process (`runbook scheduler fire`, runbook.schedule.launch):
a routine that hangs or crashes takes no other routine with it, and stopping
the scheduler interrupts each run the way Ctrl-C does. A scheduler killed
outright leaves its runs going: they end and are journaled on their own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.alerts import notifier
from runbook.clock import Clock, iso, parse_iso
from runbook.errors import RunbookError
from runbook.journal import reconcile
from runbook.journal.events import Conflict
from runbook.journal.records import FireRecord, FireStatus, HeartbeatRecord
from runbook.journal.store import JournalStore, config_for, open_store
from runbook.redact import first_line
from runbook.schedule import decide, ledger, pager
from runbook.schedule.entries import Entry, fingerprint, scheduled
from runbook.schedule.launch import Launched, last_line
from runbook.schedule.slots import Slot, start_delay
from runbook.schedule.watch import BEGIN_WITHIN, ENDED, Child, Watching
from runbook.service import RunSpec, new_run_id

BEAT_EVERY = 5.0  # seconds between heartbeats (`scheduler status` wants one a minute)
ESCALATE_EVERY = 30.0  # seconds between escalation ticks
RECONCILE_EVERY = 60.0  # seconds between looks for runs whose process died
RELOAD_EVERY = 10.0  # seconds between looks for edited playbooks
ORPHANS_EVERY = 5.0  # seconds between looks for fires whose scheduler is gone

Launch = Callable[[RunSpec, float], Launched]
Log = Callable[[str], None]


@dataclass
class Scheduler(Watching):
    inventory_path: Path | None
    clock: Clock
    launch: Launch
    near: Path = field(default_factory=Path.cwd)
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)

    def __post_init__(self) -> None:
        self.inventory, self.entries = scheduled(self.inventory_path, self.near)
        self.journal: JournalStore = open_store(config_for(self.inventory))
        self.pager = pager.Pager(self.journal, self.inventory, self.clock)
        self.started_at = iso(self.clock.now())
        self.id = f"{self.host}:{self.pid}:{self.started_at}"
        self.children: list[Child] = []
        self.stopping = False
        self._next_due: dict[tuple[str, str, str], dt.datetime] = {}
        self._last: dict[str, float] = {}  # when periodic work last ran (monotonic)
        self._files = fingerprint(self.inventory)
        self._track(self.entries)

    def _track(self, entries: list[Entry]) -> None:
        """Where each new pair's ledger got to: when its next slot is due."""
        new = [entry for entry in entries if entry.pair not in self._next_due]
        if not new:
            return
        heads = {(f.playbook_path, f.schedule, f.target): f for f in self.journal.fire_heads()}
        pauses = self.journal.pauses()
        now = self.clock.now()
        for entry in new:
            pause = ledger.pause_of(pauses, entry.path, entry.target)
            state = ledger.state_of(heads.get(entry.pair), pause, None, False)
            self._next_due[entry.pair] = decide.next_due(entry.spec, state, now)

    def reload(self) -> list[str]:
        """Read the playbooks again if any was edited, added or removed; a project
        that no longer loads keeps the schedules as they were, said once."""
        files = fingerprint(self.inventory)
        if files == self._files:
            return []
        self._files = files
        try:
            self.inventory, entries = scheduled(self.inventory_path, self.near)
        except RunbookError as exc:
            return [
                f"playbooks changed but do not load ({first_line(exc)}); "
                "the schedules stay as they were"
            ]
        before = {entry.pair for entry in self.entries}
        self.entries = entries
        self.pager.inventory = self.inventory
        self._track(entries)
        pairs = {entry.pair for entry in entries}
        for gone in before - pairs:
            self._next_due.pop(gone, None)
        return [
            f"playbooks reloaded: {len(entries)} schedule(s) x target "
            f"({len(pairs - before)} new, {len(before - pairs)} gone)"
        ]

    @property
    def operator(self) -> str:
        return f"scheduler@{self.host}"

    def close(self) -> None:
        self.journal.close()

    def reopen(self) -> None:
        """A new connection to the journal (after its server restarted, say)."""
        with contextlib.suppress(Exception):
            self.journal.close()
        self.journal = open_store(config_for(self.inventory))
        self.pager.journal = self.journal

    # -- one pass ----------------------------------------------------------------

    def tick(self, now: dt.datetime | None = None) -> list[str]:
        """Do what is due at `now`; what was done, a line each."""
        now = now or self.clock.now()
        lines = self.reap(now)
        if self._every("reload", RELOAD_EVERY):
            lines += self.reload()
        if self._every("reconcile", RECONCILE_EVERY):
            for run_id in reconcile.mark_dead_runs(self.journal, self.clock):
                lines.append(f"run {run_id}: its process is gone; marked interrupted")
        lines += self._start_queued(now)
        for entry in self.entries:
            if self._next_due[entry.pair] <= now:
                lines += self._decide(entry, now)
        lines += self._check_durations(now)
        if self._every("orphans", ORPHANS_EVERY):
            lines += self.settle_orphans(now)
        if self._every("escalate", ESCALATE_EVERY):
            lines += notifier.tick(self.pager.store())
        if self._every("beat", BEAT_EVERY):
            self.beat(now)
        return lines

    def wake_at(self, now: dt.datetime) -> dt.datetime:
        """When the next tick has work: the earliest slot due, sooner while runs go."""
        soon = now + dt.timedelta(seconds=0.25 if self.children else BEAT_EVERY)
        return min([soon, *self._next_due.values()])

    def _every(self, what: str, seconds: float) -> bool:
        moment = self.clock.monotonic()
        if moment - self._last.get(what, -seconds) < seconds:
            return False
        self._last[what] = moment
        return True

    def beat(self, now: dt.datetime, stopped: bool = False) -> None:
        self.journal.beat(
            HeartbeatRecord(
                id=self.id,
                host=self.host,
                pid=self.pid,
                started_at=self.started_at,
                last_tick=iso(now),
                stopped_at=iso(now) if stopped else None,
                note=f"{len(self.entries)} schedule(s) x target, {len(self.children)} running",
            )
        )

    # -- deciding and claiming -------------------------------------------------------

    def _pair(self, entry: Entry) -> ledger.Pair:
        return ledger.Pair(entry.playbook.name, entry.path, entry.spec.key, entry.target)

    def _running(self, entry: Entry, head: FireRecord | None = None) -> str | None:
        """A run of the playbook on the target still going, if any: recorded as
        running, or started a moment ago and not yet recorded (its process
        takes a moment to begin): a slot decided then must see it too.
        `head`: the pair's ledger head, when the caller has read it already."""
        runs = self.journal.runs(
            playbook=entry.playbook.name, target=entry.target, status="running", limit=1
        )
        if runs:
            return runs[0].id
        for child in self.children:
            same = child.entry.path == entry.path and child.entry.target == entry.target
            if same and child.process.poll() is None:
                return child.run_id
        if head is None:  # another scheduler's fire, just started
            head = self.journal.fire_head(*entry.pair)
        if (
            head is None
            or head.status is not FireStatus.STARTED
            or head.run_status
            or not head.run_id
        ):
            return None
        age = (self.clock.now() - parse_iso(head.claimed_at)).total_seconds()
        if age < BEGIN_WITHIN and self.journal.run(head.run_id) is None:
            return head.run_id
        return None

    def _decide(self, entry: Entry, now: dt.datetime) -> list[str]:
        pair = self._pair(entry)
        lines: list[str] = []
        for _ in range(10):  # catchup all: a few slots a tick, the rest the next
            head = self.journal.fire_head(*entry.pair)
            state = ledger.read_state(self.journal, pair, self._running(entry, head), head)
            decision = decide.decide(entry.spec, state, now)
            if decision.rows:
                claimed, said = self._claim(entry, pair, decision, now)
                lines += said
                if not claimed:
                    continue  # another scheduler recorded them first: decide again from its rows
            reached = decision.high_water
            if reached is not None:
                state = decide.PairState(high_water=reached.at)
            self._next_due[entry.pair] = decide.next_due(entry.spec, state, now)
            if not decision.more:
                break
        return lines

    def _claim(
        self, entry: Entry, pair: ledger.Pair, decision: decide.Decision, now: dt.datetime
    ) -> tuple[bool, list[str]]:
        """Insert the decision's rows: (whether this scheduler got them, what it did)."""
        run_id = new_run_id() if decision.start is not None else None
        events = ledger.insert_events(pair, decision.rows, self.id, iso(now), run_id)
        try:
            self.journal.append(events)
        except Conflict:
            # Another scheduler recorded these slots first: they are its own.
            return False, []
        lines = [self._row_line(entry, row, run_id) for row in decision.rows]
        if decision.page is not None:
            lines.append(self.pager.missed(entry, decision.page))
        start = decision.start
        if start is not None and run_id is not None:
            lines += self._start(entry, pair.fire_id(start.first), run_id, start.first, now)
        return True, lines

    def _row_line(self, entry: Entry, row: decide.Row, run_id: str | None) -> str:
        where = f"{entry.playbook.name} on {entry.target}"
        slot = _slot_words(row.first, entry)
        if row.count > 1 and row.last is not None:
            slot = f"{row.count} slots, {slot} to {_slot_words(row.last, entry)}"
        what = f"started run {run_id}" if row.status is FireStatus.STARTED else row.status.value
        return f"fire {where}, {slot}: {what} ({row.reason})"

    # -- runs ------------------------------------------------------------------------

    def _start(
        self, entry: Entry, fire_id: str, run_id: str, slot: Slot, now: dt.datetime
    ) -> list[str]:
        late = max(0.0, (now - slot.at).total_seconds())
        spec = RunSpec(
            playbook=entry.playbook.path,
            inventory=self.inventory.path,
            targets=(entry.target,),
            mode="scheduled",
            attended=False,
            run_id=run_id,
            operator=self.operator,
            fire={
                "id": fire_id,
                "schedule": entry.spec.key,
                "slot": slot.key,
                "local": slot.local.isoformat(timespec="seconds"),
                "late": round(late, 3),
                "scheduler": self.id,
            },
        )
        delay = start_delay(entry.spec, slot, entry.target)
        try:
            launched = self.launch(spec, delay)
        except OSError as exc:
            reason = f"the run could not be started: {exc}"
            self._settle(fire_id, now, FireStatus.ERROR, reason)
            return [f"fire {entry.playbook.name} on {entry.target}: {reason}"]
        self.children.append(
            Child(entry, fire_id, run_id, launched.process, self.clock.monotonic(), launched.stderr)
        )
        return []

    def _start_queued(self, now: dt.datetime) -> list[str]:
        """queue_one slots whose run before them has ended: one each, claimed by
        a conditional update (two schedulers: one of them gets it)."""
        lines: list[str] = []
        by_pair = {entry.pair: entry for entry in self.entries}
        # Every queued fire (at most one a routine): not only the latest 100.
        for fire in self.journal.fires(status="queued", limit=None):
            entry = by_pair.get((fire.playbook_path, fire.schedule, fire.target))
            if entry is None or self._running(entry) is not None:
                continue
            run_id = new_run_id()
            change = ledger.update_event(
                fire.id,
                iso(now),
                expect={"status": FireStatus.QUEUED.value},
                status=FireStatus.STARTED.value,
                run_id=run_id,
                scheduler=self.id,
                late=round((now - parse_iso(fire.slot)).total_seconds(), 3),
            )
            try:
                self.journal.append([change])
            except Conflict:
                continue
            slot = _slot_of(entry, fire)
            lines.append(f"fire {entry.playbook.name} on {entry.target}: queued slot, run {run_id}")
            lines += self._start(entry, fire.id, run_id, slot, now)
        return lines

    def reap(self, now: dt.datetime) -> list[str]:
        """Take up the runs that ended: the ledger gets their result; a run that
        ran resolves the pair's did-not-run incident, one that could not run opens it."""
        lines = []
        going = []
        for child in self.children:
            code = child.process.poll()
            if code is None:
                going.append(child)
                continue
            lines.append(self._ended(child, code, now))
        self.children = going
        return lines

    def _ended(self, child: Child, code: int, now: dt.datetime) -> str:
        entry = child.entry
        run = self.journal.run(child.run_id)
        said = last_line(child.stderr)
        where = f"{entry.playbook.name} on {entry.target}"
        if run is None:
            status = FireStatus.REFUSED if code == 4 else FireStatus.ERROR
            reason = said or f"the run process exited with code {code} before it recorded a run"
            if self.stopping and code in (130, -2):
                # Stopped on purpose before its run began: not a routine failing to run.
                reason = "interrupted before its run began: the scheduler was stopped"
                self._settle(child.fire_id, now, status, reason)
                return f"fire {where}: {reason}"
            self._settle(child.fire_id, now, status, reason)
            line = self.pager.page(
                entry, pager.missed_key(entry), f"{where} did not run: {reason}", "did not run"
            )
            return f"fire {where}: {status.value}: {reason}; {line}"
        self._settle(child.fire_id, now, None, None, run_status=run.status.value)
        took = self.clock.monotonic() - child.started
        line = f"run {run.id} ({where}) ended {run.status.value}, exit {code}, {took:.1f}s"
        if run.status in ENDED:
            self.pager.recovered(entry, run.id, child.over_time)
        return line

    def _settle(
        self,
        fire_id: str,
        now: dt.datetime,
        status: FireStatus | None,
        reason: str | None,
        run_status: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"ended_at": iso(now)}
        if status is not None:
            values.update(status=status.value, reason=reason)
        if run_status is not None:
            values["run_status"] = run_status
        self.journal.append([ledger.update_event(fire_id, iso(now), **values)])

    def stop(self, grace: float, wait: Callable[[float], None]) -> list[str]:
        """Interrupt every run going, as Ctrl-C does, and wait up to `grace` for them
        to journal it; a heartbeat says this scheduler stopped."""
        import signal

        self.stopping = True
        for child in self.children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGINT)
        waited = 0.0
        while any(c.process.poll() is None for c in self.children) and waited < grace:
            wait(0.1)
            waited += 0.1
        now = self.clock.now()
        lines = self.reap(now)
        for child in self.children:  # past the grace: no longer waited for
            lines.append(f"run {child.run_id} did not stop within {grace:g}s; left running")
        self.beat(now, stopped=True)
        return lines


def _slot_words(slot: Slot, entry: Entry) -> str:
    return f"slot {slot.local.isoformat(timespec='seconds')} {entry.spec.timezone}"


def _slot_of(entry: Entry, fire: FireRecord) -> Slot:
    at = parse_iso(fire.slot)
    return Slot(at=at, local=at.astimezone(entry.spec.zone))
