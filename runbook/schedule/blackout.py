"""Blackout windows: dates and weekly windows in which a schedule does not fire.

Both are read on the wall clock of the schedule's time zone, so "Sun
02:00-04:00" means those local hours whatever the offset that night.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

WEEK = 7 * 86400
_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKLY = re.compile(
    r"^\s*(?P<d1>[A-Za-z]+)\s+(?P<t1>\d{1,2}:\d{2})\s*-\s*"
    r"(?:(?P<d2>[A-Za-z]+)\s+)?(?P<t2>\d{1,2}:\d{2})\s*$"
)


class BlackoutError(ValueError):
    """A blackout that cannot be read; `field` is the key the message is about."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class DateWindow:
    """From `start` (inclusive) to `end` (exclusive), naive local wall-clock times."""

    start: dt.datetime
    end: dt.datetime
    text: str

    def covers(self, local: dt.datetime) -> bool:
        return self.start <= local.replace(tzinfo=None) < self.end

    def overlaps(self, other: DateWindow) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True)
class WeeklyWindow:
    """`length` seconds from `start` seconds after Monday 00:00, wrapping at the week's end."""

    start: int
    length: int
    text: str

    def covers(self, local: dt.datetime) -> bool:
        second = local.weekday() * 86400 + local.hour * 3600 + local.minute * 60 + local.second
        return (second - self.start) % WEEK < self.length

    def overlaps(self, other: WeeklyWindow) -> bool:
        return (other.start - self.start) % WEEK < self.length or (
            self.start - other.start
        ) % WEEK < other.length


Window = DateWindow | WeeklyWindow


def _moment(text: str, field: str) -> tuple[dt.datetime, bool]:
    """A `YYYY-MM-DD` or `YYYY-MM-DD HH:MM` text; True when it is a whole day."""
    try:
        if len(text.strip()) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(text.strip()), dt.time()), True
        return dt.datetime.fromisoformat(text.strip().replace(" ", "T")), False
    except ValueError:
        raise BlackoutError(
            f"{text!r} is not a date (YYYY-MM-DD or YYYY-MM-DD HH:MM)", field
        ) from None


def parse_dates(start: str, end: str) -> DateWindow:
    """`{from, to}`: a `to` that is a whole day includes that day."""
    first, _ = _moment(start, "from")
    last, whole_day = _moment(end, "to")
    if whole_day:
        last += dt.timedelta(days=1)
    if last <= first:
        raise BlackoutError(f"the blackout ends ({end}) before it starts ({start})", "to")
    return DateWindow(first, last, f"{start} to {end}")


def _clock(text: str, *, end: bool) -> int:
    hours, minutes = (int(part) for part in text.split(":"))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not end)):
        raise BlackoutError(f"{text!r} is not a time of day (00:00 to 23:59)", "weekly")
    return hours * 3600 + minutes * 60


def _day(text: str) -> int:
    """`Sun`, `sun`, `Sunday`: at least three letters of a day's English name."""
    lower = text.lower()
    for index, name in enumerate(_NAMES):
        if len(lower) >= 3 and name.startswith(lower):
            return index
    raise BlackoutError(f"{text!r} is not a day of the week (Mon … Sun)", "weekly")


def parse_weekly(text: str) -> WeeklyWindow:
    """`Sun 02:00-04:00`; `Sun 22:00-02:00` runs into Monday; `Sat 22:00-Mon 06:00`."""
    match = _WEEKLY.match(text)
    if match is None:
        raise BlackoutError(
            f"weekly blackout {text!r} is not DAY HH:MM-HH:MM (e.g. 'Sun 02:00-04:00')", "weekly"
        )
    first = _day(match["d1"])
    start = first * 86400 + _clock(match["t1"], end=False)
    last = _day(match["d2"]) if match["d2"] else first
    stop = last * 86400 + _clock(match["t2"], end=True)
    length = (stop - start) % WEEK
    if length == 0:
        raise BlackoutError(f"weekly blackout {text!r} is empty (it ends when it starts)", "weekly")
    if not match["d2"] and stop < start:
        length = stop + 86400 - start  # past midnight, into the next day
    return WeeklyWindow(start, length, " ".join(text.split()))


def overlap(a: Window, b: Window) -> bool:
    """Whether two windows of the same kind share a moment (a date window and a
    weekly one may: a holiday that includes a Sunday is no mistake)."""
    if isinstance(a, DateWindow) and isinstance(b, DateWindow):
        return a.overlaps(b)
    if isinstance(a, WeeklyWindow) and isinstance(b, WeeklyWindow):
        return a.overlaps(b)
    return False


def covering(windows: tuple[Window, ...], local: dt.datetime) -> Window | None:
    """The first window that covers a local wall-clock time, or None."""
    for window in windows:
        if window.covers(local):
            return window
    return None
