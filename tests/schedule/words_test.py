"""A schedule in words, as `schedule list` shows it."""

from __future__ import annotations

import pytest

from runbook.model import Blackout, Schedule
from runbook.schedule.spec import compile_schedule
from runbook.schedule.words import describe, details

CRON = {
    "0 8 * * 1-5": "at 08:00 on weekdays, Europe/Berlin",
    "0 8 * * *": "at 08:00 every day, Europe/Berlin",
    "*/5 * * * *": "every 5 minutes",
    "* * * * *": "every minute",
    "30 * * * *": "at minute 30 of every hour",
    "0 * * * *": "every hour, on the hour",
    "0 */2 * * *": "every 2 hours, at minute 0, Europe/Berlin",
    "0 8,12,17 * * *": "at 08:00, 12:00 and 17:00 every day, Europe/Berlin",
    "0 7 1 * *": "at 07:00 on the 1st of every month, Europe/Berlin",
    "0 6 * * 1": "at 06:00 on Mondays, Europe/Berlin",
    "0 9 * * sat,sun": "at 09:00 on weekends, Europe/Berlin",
    "0 0 * * 6-7": "at 00:00 on weekends, Europe/Berlin",
    "0 3 * * 1,3,5": "at 03:00 on Mondays, Wednesdays and Fridays, Europe/Berlin",
    "0 8 * * 1-3": "at 08:00 on Monday through Wednesday, Europe/Berlin",
    "0 0 1 1 *": "at 00:00 on the 1st of January, Europe/Berlin",
    "0 0 22 * *": "at 00:00 on the 22nd of every month, Europe/Berlin",
    "@daily": "at 00:00 every day, Europe/Berlin",
    # Shapes of its own are cronsim's words.
    "*/10 9-17 * * 1-5": "every 10th minute from 09:00 through 17:59 on Monday through Friday, Europe/Berlin",
    "0 0 L * *": "at 00:00 on the last day of every month, Europe/Berlin",
}
EVERY = {
    1.0: "every second",
    90.0: "every 90 seconds",
    300.0: "every 5 minutes",
    3600.0: "every hour",
    5400.0: "every 90 minutes",
    86400.0: "every 24 hours",
}


@pytest.mark.parametrize("expr", sorted(CRON))
def test_a_cron_schedule_in_words(expr: str) -> None:
    spec = compile_schedule("p", Schedule(cron=expr, timezone="Europe/Berlin"), None)
    assert describe(spec) == CRON[expr]


@pytest.mark.parametrize("seconds", sorted(EVERY))
def test_an_every_schedule_in_words(seconds: float) -> None:
    spec = compile_schedule("p", Schedule(every=seconds, timezone="Europe/Berlin"), None)
    assert describe(spec) == EVERY[seconds]


def test_the_policies_in_words_defaults_included() -> None:
    plain = compile_schedule("p", Schedule(cron="0 8 * * *"), None)
    assert details(plain) == ["overlap skip", "catch-up latest", "starting deadline 1h"]
    full = Schedule(
        every=300.0,
        overlap="queue_one",
        catchup="all",
        max_duration=1800.0,
        jitter=30.0,
        blackout=(Blackout(weekly="Sun 02:00-04:00"),),
    )
    assert details(compile_schedule("p", full, None)) == [
        "overlap queue_one",
        "catch-up all",
        "starting deadline 5m",
        "max duration 30m",
        "jitter up to 30s",
        "blackout Sun 02:00-04:00",
    ]
