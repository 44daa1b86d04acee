"""Cron expressions: checked, and iterated by Debian cron's rules.

cronsim, not croniter: at a daylight-saving change cronsim does what Debian's
cron does — a job at fixed hours (minute and hour fields not starting with
`*`) fires once when its local time happens twice, and once, at the first
existing minute after it, when its local time does not exist; a job with `*`
in the minute or hour field follows elapsed time (so `0 * * * *` fires at both
02:00+02 and 02:00+01). croniter 7 fires `30 2 * * *` twice on the night
clocks go back (tests/schedule/slots_test.py pins both behaviours).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

# Debian's cron knows these; cronsim does not, so they become five fields here.
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

# A fixed start for checks, so that a check's answer never depends on the day.
_REFERENCE = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)


def expand(expr: str) -> str:
    """The five fields of an expression (macros expanded, spaces normalised)."""
    text = expr.strip()
    return MACROS.get(text.lower(), " ".join(text.split()))


def check_cron(expr: str) -> str | None:
    """Why a cron expression is invalid, or None. Bounded work: cronsim gives up
    after 50 years without a match, which takes milliseconds."""
    text = expand(expr)
    if text.startswith("@"):
        return f"unknown cron macro {expr.strip()!r} (known: {', '.join(sorted(MACROS))})"
    fields = text.split()
    if len(fields) != 5:
        return f"cron expression needs 5 fields (minute hour day month weekday), got {len(fields)}"
    try:
        it = CronSim(text, _REFERENCE)
    except CronSimError as exc:
        return f"invalid cron expression {expr!r}: {str(exc).lower()}"
    try:
        next(it)
    except StopIteration:
        return f"cron expression {expr!r} never fires (no match within 50 years)"
    return None


def fixed_hours(expr: str) -> bool:
    """Whether Debian's daylight-saving rule applies: a job at fixed hours
    (neither the minute nor the hour field starts with `*`)."""
    minute, hour = expand(expr).split()[:2]
    return not minute.startswith("*") and not hour.startswith("*")


def fires_after(expr: str, after: dt.datetime, zone: ZoneInfo) -> Iterator[dt.datetime]:
    """Fire times strictly after `after`, as aware local times in `zone`, in order.

    cronsim computes a fixed-hours job on naive local time, so a start inside
    a repeated hour (its second pass) can yield the first pass, which is
    earlier than the start: those are dropped here, and so are repeats."""
    start = after.astimezone(zone)
    last = after.astimezone(dt.UTC)
    # cronsim drops microseconds: a start at 08:00:00.5 must not yield 08:00:00.
    for fire in CronSim(expand(expr), start.replace(microsecond=0)):
        if fire.astimezone(dt.UTC) > last:
            last = fire.astimezone(dt.UTC)
            yield fire


def fire_at_or_before(expr: str, at: dt.datetime, zone: ZoneInfo) -> dt.datetime | None:
    """The latest fire time at or before `at`, or None within 50 years.

    Reverse iteration has daylight-saving paths of its own, so its candidate is
    only a hint: the answer is what `fires_after` yields from a little before
    it, so that both agree by construction."""
    moment = at.astimezone(zone)
    limit = at.astimezone(dt.UTC)
    backwards = CronSim(expand(expr), moment + dt.timedelta(seconds=1), reverse=True)
    for _ in range(4):
        try:
            candidate = next(backwards)
        except StopIteration:
            return None
        best: dt.datetime | None = None
        # A shift moves a fire by at most an hour or two: three hours back covers it.
        # Compared in UTC: two times of one ZoneInfo compare by wall clock, fold ignored.
        for fire in fires_after(expr, candidate - dt.timedelta(hours=3), zone):
            if fire.astimezone(dt.UTC) > limit:
                break
            best = fire
        if best is not None:
            return best
    return None


@functools.lru_cache(maxsize=1024)
def clock_fields(expr: str) -> tuple[frozenset[int], frozenset[int]]:
    """The minutes and hours an expression names (for telling a shifted fire)."""
    parsed = CronSim(expand(expr), _REFERENCE)
    return frozenset(parsed.minutes), frozenset(parsed.hours)
