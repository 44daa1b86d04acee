"""A playbook's schedule, checked and compiled: its time zone resolved, its
blackouts parsed, its defaults (`starting_deadline`) computed.

`problems` says everything wrong with a schedule as written, each with the
data path it is about (the checks turn those into file:line:col); `compile`
turns a schedule without problems into a `Spec`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass

from runbook.load.yamlsrc import DataPath
from runbook.model import Schedule
from runbook.schedule import cron
from runbook.schedule.blackout import BlackoutError, Window, overlap, parse_dates, parse_weekly

HOUR = 3600.0
# The shortest gap between a cron expression's fires is measured over this many
# fires from a fixed day: enough for the defaults, which are capped at an hour.
_SAMPLE = 60
_REFERENCE = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)


class ScheduleInvalid(ValueError):
    """A schedule with problems was compiled (callers check first)."""


@dataclass(frozen=True)
class Spec:
    """One schedule ready to compute fires: what was written plus what it implies."""

    playbook: str
    schedule: Schedule
    zone: zoneinfo.ZoneInfo
    blackouts: tuple[Window, ...]
    interval: float  # seconds: `every`, or the shortest gap between cron fires
    starting_deadline: float

    @property
    def cron(self) -> str | None:
        return cron.expand(self.schedule.cron) if self.schedule.cron is not None else None

    @property
    def every(self) -> float | None:
        return self.schedule.every

    @property
    def timezone(self) -> str:
        return self.zone.key

    @property
    def key(self) -> str:
        return self.schedule.key


def zone_of(name: str | None) -> zoneinfo.ZoneInfo | None:
    """The time zone of an IANA name; None when there is no such zone."""
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None


def cron_interval(expr: str) -> float:
    """The shortest gap, in seconds, between an expression's fires (over a sample)."""
    fires = itertools.islice(cron.fires_after(expr, _REFERENCE, zoneinfo.ZoneInfo("UTC")), _SAMPLE)
    instants = [f.timestamp() for f in fires]
    gaps = [b - a for a, b in itertools.pairwise(instants)]
    return min(gaps) if gaps else 366 * 86400.0


def _where(schedule: Schedule, key: str) -> DataPath:
    return schedule.data_path if schedule.short else (*schedule.data_path, key)


def problems(schedule: Schedule, default_timezone: str | None) -> Iterator[tuple[DataPath, str]]:
    """Everything wrong with one schedule: (data path, message). Bounded work."""
    interval: float | None = schedule.every
    if schedule.cron is not None:
        why = cron.check_cron(schedule.cron)
        if why:
            yield _where(schedule, "cron"), why
        else:
            interval = cron_interval(schedule.cron)
    if schedule.every is not None and schedule.every < 1:
        yield _where(schedule, "every"), f"every: must be at least 1s, got {schedule.every:g}s"
        interval = None
    if schedule.timezone is not None and zone_of(schedule.timezone) is None:
        yield _where(schedule, "timezone"), f"unknown time zone {schedule.timezone!r}"
    if schedule.jitter is not None and interval is not None and schedule.jitter >= interval:
        yield (
            _where(schedule, "jitter"),
            f"jitter ({schedule.jitter:g}s) must be smaller than the interval between fires "
            f"({interval:g}s): a delayed start would reach the next slot",
        )
    yield from _blackout_problems(schedule)


def _blackout_problems(schedule: Schedule) -> Iterator[tuple[DataPath, str]]:
    seen: list[tuple[int, Window]] = []
    for i, item in enumerate(schedule.blackout):
        path = (*schedule.data_path, "blackout", i)
        try:
            window = _window(item.start, item.end, item.weekly)
        except BlackoutError as exc:
            yield (*path, exc.field), str(exc)
            continue
        for j, other in seen:
            if overlap(other, window):
                yield (
                    path,
                    f"blackout {window.text!r} overlaps blackout {j + 1} ({other.text!r}): "
                    "merge them into one window",
                )
                break
        seen.append((i, window))


def _window(start: str | None, end: str | None, weekly: str | None) -> Window:
    if weekly is not None:
        return parse_weekly(weekly)
    assert start is not None and end is not None  # the schema requires both
    return parse_dates(start, end)


def duplicates(schedules: tuple[Schedule, ...]) -> Iterator[tuple[DataPath, str]]:
    """The same schedule on the same targets written twice in one playbook would
    fire each slot once anyway (the ledger keys slots by schedule): say so."""
    first: set[tuple[str, tuple[str, ...]]] = set()
    for schedule in schedules:
        identity = (schedule.key, schedule.targets)
        if identity in first:
            yield schedule.data_path, f"the same schedule ({schedule.key}) is written twice"
        first.add(identity)


def compile_schedule(playbook: str, schedule: Schedule, default_timezone: str | None) -> Spec:
    """A checked schedule as a Spec; ScheduleInvalid names its first problem."""
    for path, message in problems(schedule, default_timezone):
        raise ScheduleInvalid(f"{playbook}: {'.'.join(map(str, path))}: {message}")
    zone = zone_of(schedule.timezone or default_timezone)
    if zone is None:
        raise ScheduleInvalid(f"unknown time zone {default_timezone!r} (scheduler.timezone)")
    interval = schedule.every if schedule.every is not None else cron_interval(schedule.cron or "")
    blackouts = tuple(_window(b.start, b.end, b.weekly) for b in schedule.blackout)
    deadline = schedule.starting_deadline
    return Spec(
        playbook=playbook,
        schedule=schedule,
        zone=zone,
        blackouts=blackouts,
        interval=interval,
        starting_deadline=deadline if deadline is not None else min(interval, HOUR),
    )
