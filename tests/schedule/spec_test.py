"""A schedule's mistakes are refused by `runbook validate` where they are written
(file:line:col), never with a traceback, and cheaply."""

from __future__ import annotations

import time

import pytest

from .conftest import Folder

CASES = {
    "bad cron": (
        '"0 25 * * *"',
        "3:11: $.schedule: invalid cron expression '0 25 * * *': bad hour",
    ),
    "six fields": (
        '{cron: "0 0 8 * * *"}',
        "3:18: $.schedule.cron: cron expression needs 5 fields",
    ),
    "unknown macro": ('"@fortnightly"', "3:11: $.schedule: unknown cron macro '@fortnightly'"),
    "never fires": (
        '"* * */20 * 1L"',
        "3:11: $.schedule: cron expression '* * */20 * 1L' never fires (no match within 50 years)",
    ),
    "31 February": (
        '"0 0 31 2 *"',
        "3:11: $.schedule: invalid cron expression '0 0 31 2 *': bad day-of-month",
    ),
    "unknown time zone": (
        "{cron: 0 8 * * *, timezone: Europe/Berln}",
        "3:39: $.schedule.timezone: unknown time zone 'Europe/Berln'",
    ),
    "every below a second": (
        "{every: 500ms}",
        "3:19: $.schedule.every: every: must be at least 1s, got 0.5s",
    ),
    "every zero": ("{every: 0}", "3:19: $.schedule.every: every: must be at least 1s, got 0s"),
    "from after to": (
        '{every: 1h, blackout: [{from: "2026-12-26", to: "2026-12-24"}]}',
        "3:59: $.schedule.blackout[0].to: the blackout ends (2026-12-24) before it starts (2026-12-26)",
    ),
    "not a date": (
        '{every: 1h, blackout: [{from: "2026-02-30", to: "2026-03-02"}]}',
        "3:41: $.schedule.blackout[0].from: '2026-02-30' is not a date",
    ),
    "malformed weekly": (
        '{every: 1h, blackout: [{weekly: "Sunday 2-4"}]}',
        "3:43: $.schedule.blackout[0].weekly: weekly blackout 'Sunday 2-4' is not DAY HH:MM-HH:MM",
    ),
    "unknown day": (
        '{every: 1h, blackout: [{weekly: "Sonntag 02:00-04:00"}]}',
        "3:43: $.schedule.blackout[0].weekly: 'Sonntag' is not a day of the week",
    ),
    "empty weekly": (
        '{every: 1h, blackout: [{weekly: "Sun 02:00-02:00"}]}',
        "3:43: $.schedule.blackout[0].weekly: weekly blackout 'Sun 02:00-02:00' is empty",
    ),
    "overlapping weekly": (
        '{every: 1h, blackout: [{weekly: "Sun 02:00-04:00"}, {weekly: "Sun 03:00-05:00"}]}',
        "3:63: $.schedule.blackout[1]: blackout 'Sun 03:00-05:00' overlaps blackout 1 ('Sun 02:00-04:00')",
    ),
    "overlap across midnight": (
        '{every: 1h, blackout: [{weekly: "Sun 23:00-01:00"}, {weekly: "Mon 00:30-02:00"}]}',
        "3:63: $.schedule.blackout[1]: blackout 'Mon 00:30-02:00' overlaps blackout 1",
    ),
    "overlapping dates": (
        '{every: 1h, blackout: [{from: "2026-12-24", to: "2026-12-26"}, {from: "2026-12-26", to: "2026-12-31"}]}',
        "3:74: $.schedule.blackout[1]: blackout '2026-12-26 to 2026-12-31' overlaps blackout 1",
    ),
    "jitter as long as the interval": (
        '{cron: "*/5 * * * *", jitter: 5m}',
        "3:41: $.schedule.jitter: jitter (300s) must be smaller than the interval between fires (300s)",
    ),
    "jitter of an every": (
        "{every: 30s, jitter: 1m}",
        "3:32: $.schedule.jitter: jitter (60s) must be smaller than the interval between fires (30s)",
    ),
    "cron and every": (
        '{cron: "0 8 * * *", every: 1h}',
        "3:11: $.schedule:",
    ),
    "misfire is gone": (
        '{cron: "0 8 * * *", misfire: skip}',
        "3:31: $.schedule.misfire:",
    ),
    "bad overlap": (
        '{cron: "0 8 * * *", overlap: queue}',
        "3:40: $.schedule.overlap:",
    ),
    "in a list": (
        '["0 8 * * *", {every: 1h, timezone: Mars/Base}]',
        "3:47: $.schedule[1].timezone: unknown time zone 'Mars/Base'",
    ),
    "the same twice": (
        '["0 8 * * *", "0 8 * * *"]',
        "3:25: $.schedule[1]: the same schedule (cron:0 8 * * *) is written twice",
    ),
    "the same twice, spaced otherwise": (
        '[{cron: "0 8 * * *", targets: db}, {cron: "0  8 * * *", targets: db}]',
        "3:46: $.schedule[1]: the same schedule (cron:0 8 * * *) is written twice",
    ),
    "unknown target": (
        "{every: 1h, targets: [db, prod]}",
        "3:37: $.schedule.targets[1]: unknown target or group 'prod'",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_schedule_is_refused_at_its_place(folder: Folder, case: str) -> None:
    schedule, expected = CASES[case]
    path = folder.playbook("p", schedule)
    result = folder.run("validate", str(path))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"p.yaml:{expected}" in result.output, result.output


def test_the_long_form_with_everything_is_valid(folder: Folder) -> None:
    path = folder.playbook(
        "p",
        """
  - "0 8 * * *"
  - cron: "0 8 * * 1-5"
    timezone: Europe/Berlin
    targets: [db, both]
    overlap: queue_one
    catchup: all
    starting_deadline: 10m
    max_duration: 30m
    jitter: 30s
    blackout:
      - {from: "2026-12-24", to: "2026-12-26"}
      - {from: "2027-01-01 00:00", to: "2027-01-01 06:00"}
      - {weekly: "Sun 02:00-04:00"}
      - {weekly: "Sat 22:00-Sun 01:00"}
  - {every: 5m, targets: replica, catchup: none, overlap: allow}""",
    )
    result = folder.run("validate", str(path))
    assert result.exit_code == 0, result.output


def test_the_same_cron_in_two_zones_or_for_two_targets_is_two_schedules(folder: Folder) -> None:
    path = folder.playbook(
        "p",
        '["0 8 * * *", {cron: "0 8 * * *", timezone: America/New_York},'
        ' {cron: "0 8 * * *", targets: replica}]',
    )
    result = folder.run("validate", str(path))
    assert result.exit_code == 0, result.output


def test_the_inventorys_time_zone_is_checked(folder: Folder) -> None:
    inventory = folder.root / "inventory.yaml"
    inventory.write_text(inventory.read_text() + "scheduler: {timezone: Europe/Berlim}\n")
    result = folder.run("validate", str(inventory))
    assert result.exit_code == 2, result.output
    assert "inventory.yaml:7:23: $.scheduler.timezone: unknown time zone 'Europe/Berlim'" in (
        result.output
    )


def test_checking_a_cron_that_never_fires_is_cheap(folder: Folder) -> None:
    path = folder.playbook("p", '["* * */20 * 1L", "0 0 * 2 MON#5", "0 0 29 2 *"]')
    started = time.perf_counter()
    result = folder.run("validate", str(path))
    assert time.perf_counter() - started < 2.0
    assert result.exit_code == 2, result.output
    assert "3:12: $.schedule[0]: cron expression '* * */20 * 1L' never fires" in result.output
    # Rare is not never: every 28 years (Monday 29 February), every 4 years.
    assert result.output.count("never fires") == 1, result.output
