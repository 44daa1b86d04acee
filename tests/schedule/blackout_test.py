"""Blackout windows, read on the schedule's wall clock."""

from __future__ import annotations

import datetime as dt

import pytest

from runbook.schedule.blackout import BlackoutError, overlap, parse_dates, parse_weekly


def local(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_a_date_window_includes_its_last_day() -> None:
    window = parse_dates("2026-12-24", "2026-12-26")
    assert window.covers(local("2026-12-24T00:00"))
    assert window.covers(local("2026-12-26T23:59:59"))
    assert not window.covers(local("2026-12-27T00:00"))
    assert not window.covers(local("2026-12-23T23:59"))


def test_a_date_window_with_times_ends_at_its_time() -> None:
    window = parse_dates("2027-01-01 00:00", "2027-01-01 06:00")
    assert window.covers(local("2027-01-01T05:59"))
    assert not window.covers(local("2027-01-01T06:00"))
    assert parse_dates("2026-12-24", "2026-12-24").covers(local("2026-12-24T12:00"))


@pytest.mark.parametrize(
    ("start", "end", "field", "message"),
    [
        ("2026-12-26", "2026-12-24", "to", "ends (2026-12-24) before it starts (2026-12-26)"),
        ("2027-01-01 06:00", "2027-01-01 06:00", "to", "ends"),
        ("2026-13-01", "2026-12-24", "from", "'2026-13-01' is not a date"),
        ("2026-12-01", "2026-12-32", "to", "'2026-12-32' is not a date"),
    ],
)
def test_a_date_window_that_makes_no_sense(start: str, end: str, field: str, message: str) -> None:
    with pytest.raises(BlackoutError) as caught:
        parse_dates(start, end)
    assert caught.value.field == field and message in str(caught.value)


def test_weekly_windows_on_the_wall_clock() -> None:
    sunday = parse_weekly("Sun 02:00-04:00")
    assert sunday.covers(local("2026-10-25T02:30"))  # the Sunday clocks go back
    assert not sunday.covers(local("2026-10-25T04:00"))
    assert not sunday.covers(local("2026-10-26T02:30"))  # Monday
    night = parse_weekly("Sun 22:00-02:00")  # into Monday
    assert night.covers(local("2026-10-26T01:59")) and not night.covers(local("2026-10-26T02:00"))
    weekend = parse_weekly("Sat 22:00-Mon 06:00")
    assert weekend.covers(local("2026-10-25T12:00")) and weekend.covers(local("2026-10-26T05:00"))
    wrap = parse_weekly("Sun 23:00-Mon 01:00")  # across the end of the week
    assert wrap.covers(local("2026-10-26T00:30")) and wrap.covers(local("2026-10-25T23:30"))
    assert parse_weekly("sunday 00:00-24:00").covers(local("2026-10-25T23:59"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Sunday 2-4", "is not DAY HH:MM-HH:MM"),
        ("Sun 02:00", "is not DAY HH:MM-HH:MM"),
        ("Su 02:00-04:00", "'Su' is not a day of the week"),
        ("Sonntag 02:00-04:00", "'Sonntag' is not a day of the week"),
        ("Sun 02:00-02:00", "is empty"),
        ("Sun 24:00-02:00", "'24:00' is not a time of day"),
        ("Sun 02:60-03:00", "'02:60' is not a time of day"),
    ],
)
def test_a_malformed_weekly_window(text: str, message: str) -> None:
    with pytest.raises(BlackoutError) as caught:
        parse_weekly(text)
    assert message in str(caught.value) and caught.value.field == "weekly"


def test_overlaps_are_between_windows_of_one_kind() -> None:
    assert overlap(parse_weekly("Sun 02:00-04:00"), parse_weekly("Sun 03:59-05:00"))
    assert not overlap(parse_weekly("Sun 02:00-04:00"), parse_weekly("Sun 04:00-05:00"))
    assert overlap(parse_weekly("Sat 22:00-Mon 06:00"), parse_weekly("Sun 02:00-04:00"))
    assert overlap(parse_dates("2026-12-24", "2026-12-26"), parse_dates("2026-12-26", "2026-12-27"))
    assert not overlap(
        parse_dates("2026-12-24", "2026-12-25"), parse_dates("2026-12-26", "2026-12-27")
    )
    # A holiday that includes a Sunday is no mistake.
    assert not overlap(parse_dates("2026-12-24", "2026-12-31"), parse_weekly("Sun 02:00-04:00"))
