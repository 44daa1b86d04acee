"""A schedule in words: "at 08:00 on weekdays, Europe/Berlin", "every 5 minutes".

The common shapes are said here; anything else is cronsim's own explanation.
The time zone is named where the wall clock decides the fire (fixed hours or
days); a job that runs hourly or more often, and an `every:`, follow elapsed time.
"""

from __future__ import annotations

import datetime as dt

from cronsim import CronSim

from runbook.schedule import cron
from runbook.schedule.spec import Spec

_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_DOW = {name[:3].lower(): i for i, name in enumerate(_DAY_NAMES)}
_MON = {name[:3].lower(): i + 1 for i, name in enumerate(_MONTHS)}


def describe(spec: Spec) -> str:
    """The schedule's fire times in words."""
    if spec.cron is None:
        assert spec.every is not None
        return every_words(spec.every)
    text = cron_words(spec.cron)
    if _wall_clock(spec.cron):
        text += f", {spec.timezone}"
    return text


def details(spec: Spec) -> list[str]:
    """Its policies, each a short phrase (defaults included, so nothing is implied)."""
    s = spec.schedule
    out = [
        f"overlap {s.overlap}",
        f"catch-up {s.catchup}",
        f"starting deadline {duration_words(spec.starting_deadline)}",
    ]
    if s.max_duration is not None:
        out.append(f"max duration {duration_words(s.max_duration)}")
    if s.jitter:
        out.append(f"jitter up to {duration_words(s.jitter)}")
    out += [f"blackout {w.text}" for w in spec.blackouts]
    return out


def duration_words(seconds: float) -> str:
    """`90` → `90s`, `3600` → `1h`, `5400` → `90m`: the largest whole unit."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def every_words(seconds: float) -> str:
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"every {unit}" if n == 1 else f"every {n} {unit}s"
    return "every second" if seconds == 1 else f"every {seconds:g} seconds"


def _wall_clock(expr: str) -> bool:
    _, hour, dom, month, dow = cron.expand(expr).split()
    return hour != "*" or dom != "*" or month != "*" or dow != "*"


def _number(text: str, names: dict[str, int] | None = None) -> int | None:
    if text.isdigit():
        return int(text)
    return names.get(text.lower()) if names else None


def _values(field: str, names: dict[str, int] | None = None) -> list[int] | None:
    """The values of a list of numbers and ranges (`1-5`, `mon,wed`); None for steps and the like."""
    out: list[int] = []
    for part in field.split(","):
        first, _, last = part.partition("-")
        a = _number(first, names)
        b = _number(last, names) if last else a
        if a is None or b is None or b < a:
            return None
        out.extend(range(a, b + 1))
    return sorted(set(out))


def _series(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _weekdays(field: str) -> str | None:
    days = _values(field, _DOW)
    if days is None:
        return None
    days = sorted({d % 7 for d in days})
    if days == [1, 2, 3, 4, 5]:
        return "on weekdays"
    if days == [0, 6]:
        return "on weekends"
    if len(days) >= 3 and days == list(range(days[0], days[-1] + 1)):
        return f"on {_DAY_NAMES[days[0]]} through {_DAY_NAMES[days[-1]]}"
    return "on " + _series([f"{_DAY_NAMES[d]}s" for d in days])


def _days(dom: str, month: str, dow: str) -> str | None:
    if dom == month == dow == "*":
        return "every day"
    if dom == month == "*":
        return _weekdays(dow)
    days, months = _values(dom), _values(month, _MON)
    if dow != "*" or days is None or len(days) != 1 or days[0] > 31:
        return None
    if month == "*":
        return f"on the {_ordinal(days[0])} of every month"
    if months and len(months) == 1 and 1 <= months[0] <= 12:
        return f"on the {_ordinal(days[0])} of {_MONTHS[months[0] - 1]}"
    return None


def cron_words(expr: str) -> str:
    """A cron expression in words, without its time zone."""
    minute, hour, dom, month, dow = cron.expand(expr).split()
    rest_any = dom == month == dow == "*"
    if hour == "*" and rest_any:
        if minute == "*":
            return "every minute"
        if minute.startswith("*/") and minute[2:].isdigit():
            return every_words(int(minute[2:]) * 60)
        if minute.isdigit():
            m = int(minute)
            return "every hour, on the hour" if m == 0 else f"at minute {m} of every hour"
    if minute.isdigit() and hour.startswith("*/") and hour[2:].isdigit() and rest_any:
        return f"{every_words(int(hour[2:]) * 3600)}, at minute {int(minute)}"
    hours = _values(hour)
    days = _days(dom, month, dow)
    if minute.isdigit() and hours and max(hours) < 24 and days:
        times = _series([f"{h:02d}:{int(minute):02d}" for h in hours])
        return f"at {times} {days}"
    explained = CronSim(cron.expand(expr), dt.datetime(2001, 1, 1)).explain()
    return explained[:1].lower() + explained[1:]
