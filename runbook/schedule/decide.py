"""What a tick does with one (schedule, target): which slots are due, which
one runs, and what the ledger records about the others.

Pure: given the schedule, now, and what the ledger and the journal say about
the pair (`PairState`), `decide` returns the ledger rows to insert, at once,
and which of them starts a run. The rows' ids are the slots' keys, so two
schedulers deciding from the same ledger state insert the same first row and
one of them gets a conflict: it owns nothing, and decides again from what the
other recorded (runbook.schedule.tick).

The policies (the issue's words, made exact):

- A slot is *on time* while less than `ON_TIME` (a minute, or the schedule's
  `starting_deadline` if that is shorter) has passed since it; *late* until
  its `starting_deadline`; *missed* after that.
- catchup `none`: only an on-time slot runs; the others are recorded missed.
  `latest`: the most recent slot runs if it is within its deadline, late or
  not; the older ones are missed. `all`: every slot runs, in order, one at a
  time (a slot waits while the run before it goes on), however late.
- overlap, while a run of the playbook on the target is going: `skip` records
  the slot skipped; `queue_one` records it queued (it starts when that run
  ends; a second one while one waits is skipped); `allow` starts it alongside.
- A slot in a blackout window is recorded as such and not run; slots that
  came while the schedule was disabled are recorded as paused, not missed.
- Missed slots are recorded as one row per range (first, last, count), and
  page someone (the dead-man's switch) unless a newer slot runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from runbook.journal.records import FireStatus
from runbook.schedule.slots import Slot, iter_slots, slots_between, span
from runbook.schedule.spec import Spec

ON_TIME = 60.0  # seconds: a slot started within this is on time (a tick a minute reaches it)


@dataclass(frozen=True)
class PairState:
    """What the ledger and the journal say about one (schedule, target)."""

    # The last slot the ledger has for the pair (None: never seen: slots start
    # one deadline before now, so a new schedule does not page for its past).
    high_water: dt.datetime | None = None
    running: str | None = None  # a run of the playbook on the target still going
    queued: bool = False  # a queue_one slot waits already
    paused: bool = False  # disabled now
    resumed_at: dt.datetime | None = None  # enabled again at: earlier slots were paused


@dataclass(frozen=True)
class Row:
    """A ledger row to insert: one slot, or a range of them."""

    first: Slot
    status: FireStatus
    reason: str
    last: Slot | None = None  # a range's last slot
    count: int = 1
    late: float | None = None  # seconds after its slot it starts (a started row)


@dataclass(frozen=True)
class Decision:
    rows: tuple[Row, ...] = ()
    # The row whose run starts now (status started), if any.
    start: Row | None = None
    # The dead-man's switch: slots were missed and none newer runs.
    page: str | None = None
    # More slots are due than this decision covered (catchup all): decide again.
    more: bool = False

    @property
    def high_water(self) -> Slot | None:
        """The last slot this decision records."""
        if not self.rows:
            return None
        row = self.rows[-1]
        return row.last or row.first


def on_time_within(spec: Spec) -> float:
    return min(ON_TIME, spec.starting_deadline)


def first_after(spec: Spec, state: PairState, now: dt.datetime) -> dt.datetime:
    """Where a pair's due slots begin (exclusive)."""
    if state.high_water is not None:
        return state.high_water
    return now - dt.timedelta(seconds=spec.starting_deadline)


def next_due(spec: Spec, state: PairState, now: dt.datetime) -> dt.datetime:
    """The first slot the pair has not recorded: the tick need not look at the
    pair before then (the daemon sleeps until the earliest of these)."""
    return next(iter_slots(spec, first_after(spec, state, now))).at


def decide(spec: Spec, state: PairState, now: dt.datetime) -> Decision:
    """What to record and run for one (schedule, target) at `now`."""
    if state.paused:
        return Decision()  # recorded as a paused range once it is enabled again
    after = first_after(spec, state, now)
    rows: list[Row] = []
    if state.resumed_at is not None and state.resumed_at > after:
        paused = span(spec, after, min(state.resumed_at, now))
        if paused.first is not None and paused.last is not None:
            rows.append(
                Row(
                    paused.first,
                    FireStatus.PAUSED,
                    "the schedule was disabled",
                    last=paused.last,
                    count=paused.count,
                )
            )
            after = paused.last.at
    if spec.schedule.catchup == "all":
        return _in_order(spec, state, now, after, rows)
    due = span(spec, after, now)
    if due.first is None or due.last is None:
        return Decision(tuple(rows))
    latest = due.last
    age = (now - latest.at).total_seconds()
    window = spec.starting_deadline if spec.schedule.catchup == "latest" else on_time_within(spec)
    runs = age <= window
    older = due.count - 1
    if older > 0 or not runs:
        first_missed = due.first
        last_missed = latest if not runs else _before(spec, latest, after)
        count = due.count if not runs else older
        reason = (
            f"not started within {_seconds(spec.starting_deadline)} of its time"
            if not runs or spec.schedule.catchup == "latest"
            else "not started on time (catchup: none)"
        )
        rows.append(
            Row(
                first_missed,
                FireStatus.MISSED,
                reason + ("" if due.complete else f" (at least {count} slots)"),
                last=last_missed if count > 1 else None,
                count=count,
            )
        )
    page = None
    if not runs:
        if latest.blackout is None:
            page = _missed_message(spec, rows[-1])
        return Decision(tuple(rows), page=page)
    row = _fire(spec, state, latest, age)
    rows.append(row)
    return Decision(tuple(rows), start=row if row.status is FireStatus.STARTED else None)


def _in_order(
    spec: Spec, state: PairState, now: dt.datetime, after: dt.datetime, rows: list[Row]
) -> Decision:
    """catchup all: the next due slot, and the blacked-out ones before it."""
    for slot in slots_between(spec, after, now, limit=100):
        age = (now - slot.at).total_seconds()
        if slot.blackout is not None:
            rows.append(Row(slot, FireStatus.BLACKOUT, f"in the blackout {slot.blackout}"))
            continue
        backlog = age > on_time_within(spec)
        if state.running and backlog:
            return Decision(tuple(rows))  # waits for the run before it: catch-up in order
        row = _fire(spec, state, slot, age)
        rows.append(row)
        start = row if row.status is FireStatus.STARTED else None
        return Decision(tuple(rows), start=start, more=start is not None)
    return Decision(tuple(rows), more=len(rows) >= 100)


def _fire(spec: Spec, state: PairState, slot: Slot, age: float) -> Row:
    """The row of a slot that is to run now: started, or held by the overlap policy."""
    if slot.blackout is not None:
        return Row(slot, FireStatus.BLACKOUT, f"in the blackout {slot.blackout}")
    late = max(0.0, age)
    if state.running is not None:
        policy = spec.schedule.overlap
        if policy == "skip":
            return Row(slot, FireStatus.SKIPPED, f"run {state.running} still going (overlap: skip)")
        if policy == "queue_one":
            if state.queued:
                return Row(
                    slot, FireStatus.SKIPPED, "a slot is queued already (overlap: queue_one)"
                )
            return Row(
                slot, FireStatus.QUEUED, f"waits for run {state.running} (overlap: queue_one)"
            )
    reason = "on time" if late <= on_time_within(spec) else f"{_seconds(late)} late"
    return Row(slot, FireStatus.STARTED, reason, late=late)


def _before(spec: Spec, slot: Slot, after: dt.datetime) -> Slot:
    """The slot before `slot` (there is one after `after`: the caller counted it)."""
    earlier = span(spec, after, slot.at - dt.timedelta(milliseconds=1))
    assert earlier.last is not None
    return earlier.last


def _missed_message(spec: Spec, row: Row) -> str:
    when = row.first.local.isoformat(timespec="seconds")
    if row.count > 1 and row.last is not None:
        return (
            f"{row.count} slots did not run, {when} to "
            f"{row.last.local.isoformat(timespec='seconds')} ({spec.timezone})"
        )
    return f"the slot of {when} ({spec.timezone}) did not run: {row.reason}"


def _seconds(value: float) -> str:
    if value >= 3600 and value % 3600 == 0:
        return f"{value / 3600:g}h"
    if value >= 60 and value % 60 == 0:
        return f"{value / 60:g}m"
    return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"
