"""Fire times ("slots"), each identified by its UTC instant.

cron schedules follow Debian cron's daylight-saving rules (runbook.schedule.cron);
`every:` schedules count whole intervals from the Unix epoch in UTC, so every
scheduler, on any host, computes the same slots. Blacked-out slots are still
slots (the ledger records them as blacked out); `jitter` moves a start, never
a slot. Nothing here reads a clock: every function is given its instants.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from runbook.schedule import cron
from runbook.schedule.blackout import covering
from runbook.schedule.spec import Spec

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)
# How many slots a span counts one by one before it says "at least" (cron
# only: `every:` spans are counted by arithmetic). Ten thousand is a week of a
# one-minute cron, and a few milliseconds of work.
COUNT_LIMIT = 10_000


@dataclass(frozen=True)
class Slot:
    """One fire of a schedule."""

    at: dt.datetime  # the UTC instant: the slot's identity
    local: dt.datetime  # the same instant on the schedule's wall clock
    # The written local time did not exist (clocks went forward): it fires at the
    # first minute after the gap, once.
    shifted: bool = False
    # The local time happens twice that night (clocks went back); a fixed-hours
    # job fires at the first, once.
    repeated: bool = False
    blackout: str | None = None  # the window that covers it: not run

    @property
    def key(self) -> str:
        """The slot as the ledger keys it: ISO UTC, to the millisecond."""
        return self.at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Span:
    """The slots in a range, summarised: a long outage is one range, not a list."""

    first: Slot | None
    last: Slot | None
    count: int
    complete: bool = True  # False: `count` is a lower bound (COUNT_LIMIT reached)


def _slot(spec: Spec, at: dt.datetime) -> Slot:
    local = at.astimezone(spec.zone)
    other = local.replace(fold=1 - local.fold)
    repeated = other.utcoffset() != local.utcoffset()
    shifted = False
    if spec.cron is not None and cron.fixed_hours(spec.cron):
        minutes, hours = cron.clock_fields(spec.cron)
        shifted = local.minute not in minutes or local.hour not in hours
    window = covering(spec.blackouts, local)
    return Slot(
        at=at.astimezone(dt.UTC),
        local=local,
        shifted=shifted,
        repeated=repeated,
        blackout=window.text if window else None,
    )


def _interval_ms(spec: Spec) -> int:
    assert spec.every is not None
    return max(1, round(spec.every * 1000))


def _ms(instant: dt.datetime) -> int:
    """Whole milliseconds since the epoch, floored (exact: no float rounding)."""
    return (instant.astimezone(dt.UTC) - EPOCH) // _MS


def iter_slots(spec: Spec, after: dt.datetime) -> Iterator[Slot]:
    """Slots strictly after an instant, in order, without end (callers bound it)."""
    if spec.cron is None:
        step = _interval_ms(spec)
        index = _ms(after) // step + 1
        while True:
            yield _slot(spec, EPOCH + index * step * _MS)
            index += 1
    for fire in cron.fires_after(spec.cron, after, spec.zone):
        yield _slot(spec, fire)


def next_slots(spec: Spec, after: dt.datetime, count: int) -> list[Slot]:
    """The next `count` slots strictly after an instant."""
    return list(itertools.islice(iter_slots(spec, after), count))


def last_slot(spec: Spec, at: dt.datetime) -> Slot | None:
    """The latest slot at or before an instant (None: none within 50 years)."""
    if spec.cron is None:
        step = _interval_ms(spec)
        return _slot(spec, EPOCH + (_ms(at) // step) * step * _MS)
    fire = cron.fire_at_or_before(spec.cron, at, spec.zone)
    return _slot(spec, fire) if fire is not None else None


def slots_between(
    spec: Spec, after: dt.datetime, until: dt.datetime, limit: int = 100
) -> list[Slot]:
    """The first `limit` slots in (after, until], in order: catch-up `all` runs
    them a batch at a time, continuing after the last one it got."""
    until = until.astimezone(dt.UTC)  # aware times of one zone compare by wall clock
    out = []
    for slot in itertools.islice(iter_slots(spec, after), limit):
        if slot.at > until:
            break
        out.append(slot)
    return out


def span(spec: Spec, after: dt.datetime, until: dt.datetime) -> Span:
    """The slots in (after, until] as a range: first, last and how many."""
    after, until = after.astimezone(dt.UTC), until.astimezone(dt.UTC)
    if until <= after:
        return Span(None, None, 0)
    if spec.cron is None:
        step = _interval_ms(spec)
        first, last = _ms(after) // step + 1, _ms(until) // step
        if last < first:
            return Span(None, None, 0)
        return Span(
            _slot(spec, EPOCH + first * step * _MS),
            _slot(spec, EPOCH + last * step * _MS),
            last - first + 1,
        )
    head = slots_between(spec, after, until, limit=1)
    if not head:
        return Span(None, None, 0)
    final = last_slot(spec, until)
    count, complete = 0, True
    for slot in iter_slots(spec, after):
        if slot.at > until:
            break
        if count == COUNT_LIMIT:
            complete = False
            break
        count += 1
    return Span(head[0], final, count, complete)


def blacked_out(spec: Spec, instant: dt.datetime) -> str | None:
    """The blackout window covering an instant (on the schedule's wall clock), or None."""
    window = covering(spec.blackouts, instant.astimezone(spec.zone))
    return window.text if window else None


def start_delay(spec: Spec, slot: Slot, target: str) -> float:
    """Seconds to wait after a slot before starting it: a share of `jitter`
    that depends only on (schedule, target, slot), so every scheduler that
    claims the slot waits the same, and targets spread out. The slot's key
    does not change."""
    if not spec.schedule.jitter:
        return 0.0
    seed = f"{spec.playbook}\0{spec.key}\0{target}\0{slot.key}".encode()
    fraction = int.from_bytes(hashlib.sha256(seed).digest()[:8], "big") / 2**64
    return fraction * spec.schedule.jitter
