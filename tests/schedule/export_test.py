"""Schedules as the OS's schedulers write them."""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo

import pytest
from cronsim import CronSim

from runbook.model import Schedule
from runbook.schedule.export import calendar, every_as_cron
from runbook.schedule.slots import next_slots
from runbook.schedule.spec import compile_schedule


@pytest.mark.parametrize(
    ("seconds", "expr"),
    [
        (60.0, "* * * * *"),
        (300.0, "*/5 * * * *"),
        (900.0, "*/15 * * * *"),
        (3600.0, "0 * * * *"),
        (7200.0, "0 */2 * * *"),
        (86400.0, "0 0 * * *"),
        (30.0, None),
        (420.0, None),  # 7 minutes do not divide an hour
        (5400.0, None),
        (5 * 3600.0, None),
    ],
)
def test_an_interval_as_cron_only_where_it_keeps_the_slots(
    seconds: float, expr: str | None
) -> None:
    assert every_as_cron(seconds) == expr
    if expr is None:
        return
    # The cron expression, read in UTC, fires at exactly the every: slots.
    start = dt.datetime(2026, 3, 28, 22, 7, tzinfo=dt.UTC)
    spec = compile_schedule("p", Schedule(every=seconds), None)
    expected = [s.at for s in next_slots(spec, start, 30)]
    cron = list(itertools.islice(CronSim(expr, start.astimezone(zoneinfo.ZoneInfo("UTC"))), 30))
    assert cron == expected


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (
            Schedule(cron="0 8 * * 1-5", timezone="Europe/Berlin"),
            ["Mon,Tue,Wed,Thu,Fri *-*-* 08:00:00 Europe/Berlin"],
        ),
        (Schedule(cron="*/15 * * * *"), ["*-*-* *:00/15:00 UTC"]),
        (Schedule(cron="0 8,12,17 * * *"), ["*-*-* 08,12,17:00:00 UTC"]),
        (Schedule(cron="0 7 1 * *"), ["*-*-01 07:00:00 UTC"]),
        (Schedule(cron="0 9-17 * 1-6 *"), ["*-01..06-* 09..17:00:00 UTC"]),
        # cron: either day field; systemd: both. One line for each.
        (Schedule(cron="0 7 1 * 1"), ["*-*-01 07:00:00 UTC", "Mon *-*-* 07:00:00 UTC"]),
        (Schedule(cron="0 0 L * *"), []),
        (Schedule(every=30.0), ["*-*-* *:*:00/30 UTC"]),
        (Schedule(every=7200.0), ["*-*-* 00/2:00:00 UTC"]),
        (Schedule(every=7.0), []),
    ],
)
def test_a_schedule_as_a_systemd_calendar(schedule: Schedule, expected: list[str]) -> None:
    assert calendar(compile_schedule("p", schedule, None)) == expected
