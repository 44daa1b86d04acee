"""Fire times across both daylight-saving changes of Europe/Berlin and
America/New_York, with every instant given (no clock is read).

Debian cron's rule: a job at fixed hours fires once when its local time
happens twice (at the first), and once, at the first minute after the gap,
when its local time does not exist; a job that runs hourly or more often
follows elapsed time. croniter 7 (the library replaced) fires `30 2 * * *`
twice in Berlin on 2026-10-25 (02:30+02:00 and 02:30+01:00): the first
test of the fall would fail with it.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook.model import Blackout, Schedule
from runbook.schedule import slots
from runbook.schedule.spec import Spec, compile_schedule

UTC = dt.UTC


def spec(cron: str | None = None, tz: str = "UTC", **kw: object) -> Spec:
    schedule = Schedule(cron=cron, timezone=tz, **kw)  # type: ignore[arg-type]
    return compile_schedule("p", schedule, None)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def local(s: Spec, after: str, n: int) -> list[str]:
    return [x.local.isoformat() for x in slots.next_slots(s, at(after), n)]


# --- Europe/Berlin: clocks go forward 2026-03-29 02:00 → 03:00, back 2026-10-25 03:00 → 02:00


def test_berlin_0230_fires_once_at_0300_when_0230_does_not_exist() -> None:
    s = spec("30 2 * * *", "Europe/Berlin")
    got = slots.next_slots(s, at("2026-03-28T12:00:00+00:00"), 2)
    assert [x.local.isoformat() for x in got] == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]
    assert [x.shifted for x in got] == [True, False]


def test_berlin_0230_fires_once_when_0230_happens_twice() -> None:
    s = spec("30 2 * * *", "Europe/Berlin")
    got = slots.next_slots(s, at("2026-10-24T12:00:00+00:00"), 2)
    assert [x.local.isoformat() for x in got] == [
        "2026-10-25T02:30:00+02:00",  # the first 02:30; not again at 02:30+01:00
        "2026-10-26T02:30:00+01:00",
    ]
    assert [x.repeated for x in got] == [True, False]


def test_a_start_in_the_second_pass_does_not_fire_the_first_again() -> None:
    # cronsim works on naive local time: from 02:15+01:00 (the second 02:15) it
    # answers 02:30+02:00, which was an hour earlier. It fired then.
    s = spec("30 2 * * *", "Europe/Berlin")
    second_pass = dt.datetime(2026, 10, 25, 2, 15, fold=1, tzinfo=s.zone)
    assert local(s, second_pass.isoformat(), 1) == ["2026-10-26T02:30:00+01:00"]


def test_berlin_hourly_follows_elapsed_time() -> None:
    s = spec("0 * * * *", "Europe/Berlin")
    assert local(s, "2026-03-28T23:30:00+00:00", 3) == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00",  # 02:00 does not exist: an hour later in elapsed time
        "2026-03-29T04:00:00+02:00",
    ]
    assert local(s, "2026-10-24T23:30:00+00:00", 4) == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",  # the hour that happens twice fires twice
        "2026-10-25T03:00:00+01:00",
        "2026-10-25T04:00:00+01:00",
    ]


@pytest.mark.parametrize("after", ["2026-03-28T23:50:00+00:00", "2026-10-24T23:50:00+00:00"])
def test_berlin_every_15_minutes_is_15_minutes_apart_through_the_change(after: str) -> None:
    s = spec("*/15 * * * *", "Europe/Berlin")
    got = slots.next_slots(s, at(after), 12)
    gaps = {(b.at - a.at).total_seconds() for a, b in itertools.pairwise(got)}
    assert gaps == {900.0}
    assert not any(x.shifted for x in got)


def test_berlin_weekdays_at_0800_keep_their_local_time() -> None:
    s = spec("0 8 * * 1-5", "Europe/Berlin")
    got = slots.next_slots(s, at("2026-10-23T00:00:00+00:00"), 2)
    assert [x.local.isoformat() for x in got] == [
        "2026-10-23T08:00:00+02:00",  # Friday
        "2026-10-26T08:00:00+01:00",  # Monday, after the change: an hour later in UTC
    ]
    assert [x.key for x in got] == ["2026-10-23T06:00:00.000Z", "2026-10-26T07:00:00.000Z"]
    spring = slots.next_slots(s, at("2026-03-27T00:00:00+00:00"), 2)
    assert [x.key for x in spring] == ["2026-03-27T07:00:00.000Z", "2026-03-30T06:00:00.000Z"]


# --- America/New_York: forward 2026-03-08 02:00 → 03:00, back 2026-11-01 02:00 → 01:00


def test_new_york_0230_is_shifted_in_march_and_single_in_november() -> None:
    s = spec("30 2 * * *", "America/New_York")
    assert local(s, "2026-03-07T12:00:00+00:00", 2) == [
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ]
    assert local(s, "2026-10-31T12:00:00+00:00", 2) == [
        "2026-11-01T02:30:00-05:00",
        "2026-11-02T02:30:00-05:00",
    ]


def test_new_york_0130_fires_once_when_0130_happens_twice() -> None:
    s = spec("30 1 * * *", "America/New_York")
    got = slots.next_slots(s, at("2026-10-31T12:00:00+00:00"), 2)
    assert [x.local.isoformat() for x in got] == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-02T01:30:00-05:00",
    ]
    assert got[0].repeated


def test_new_york_hourly_and_quarter_hourly_follow_elapsed_time() -> None:
    hourly = spec("0 * * * *", "America/New_York")
    assert local(hourly, "2026-03-08T05:30:00+00:00", 3) == [
        "2026-03-08T01:00:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-08T04:00:00-04:00",
    ]
    assert local(hourly, "2026-11-01T04:30:00+00:00", 3) == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T02:00:00-05:00",
    ]
    quarter = spec("*/15 * * * *", "America/New_York")
    got = slots.next_slots(quarter, at("2026-11-01T05:50:00+00:00"), 8)
    assert [x.key[11:16] for x in got] == [
        "06:00", "06:15", "06:30", "06:45", "07:00", "07:15", "07:30", "07:45",
    ]  # fmt: skip


def test_new_york_weekdays_at_0800() -> None:
    s = spec("0 8 * * 1-5", "America/New_York")
    got = slots.next_slots(s, at("2026-03-06T00:00:00+00:00"), 2)
    assert [x.local.isoformat() for x in got] == [
        "2026-03-06T08:00:00-05:00",
        "2026-03-09T08:00:00-04:00",
    ]


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York"])
@pytest.mark.parametrize("after", ["2026-03-08T00:00:00+00:00", "2026-10-24T23:00:00+00:00"])
def test_every_5_minutes_counts_from_the_epoch_whatever_the_zone(tz: str, after: str) -> None:
    s = spec(None, tz, every=300.0)
    got = slots.next_slots(s, at(after), 40)
    assert all(int(x.at.timestamp()) % 300 == 0 for x in got)
    assert {(b.at - a.at).total_seconds() for a, b in itertools.pairwise(got)} == {300.0}
    # Another scheduler starting at another moment computes the same slots.
    later = slots.next_slots(s, got[9].at - dt.timedelta(seconds=17), 5)
    assert [x.key for x in later] == [x.key for x in got[9:14]]


# --- consistency: wherever one starts, the same slots


DST_NIGHTS = [
    ("Europe/Berlin", "2026-03-28T22:00:00+00:00"),
    ("Europe/Berlin", "2026-10-24T22:00:00+00:00"),
    ("America/New_York", "2026-03-08T04:00:00+00:00"),
    ("America/New_York", "2026-11-01T03:00:00+00:00"),
]
EXPRESSIONS = [
    "30 2 * * *",
    "0 * * * *",
    "*/15 * * * *",
    "0 8 * * 1-5",
    "30 1 * * *",
    "0 */2 * * *",
]


@settings(max_examples=150, deadline=None)
@given(
    night=st.sampled_from(DST_NIGHTS),
    expr=st.sampled_from(EXPRESSIONS),
    offset=st.integers(min_value=0, max_value=6 * 3600),
)
def test_any_start_agrees_with_one_walk_through_the_night(
    night: tuple[str, str], expr: str, offset: int
) -> None:
    tz, start = night
    s = spec(expr, tz)
    walk = slots.next_slots(s, at(start), 200)
    keys = [x.at for x in walk]
    assert keys == sorted(set(keys))  # strictly increasing: nothing fires twice
    moment = at(start) + dt.timedelta(seconds=offset)
    expected = next(x for x in walk if x.at > moment)
    assert slots.next_slots(s, moment, 1)[0] == expected
    before = [x for x in walk if x.at <= moment]
    previous = slots.last_slot(s, moment)
    if before:
        assert previous == before[-1]


# --- ranges, for catch-up


def test_a_long_outage_is_a_range_computed_not_listed() -> None:
    s = spec(None, every=60.0)
    got = slots.span(s, at("2016-01-01T00:00:00+00:00"), at("2026-01-01T00:00:30+00:00"))
    assert got.count == 5_260_320 and got.complete
    assert got.first is not None and got.first.key == "2016-01-01T00:01:00.000Z"
    assert got.last is not None and got.last.key == "2026-01-01T00:00:00.000Z"


def test_a_cron_range_counts_up_to_a_limit_then_says_at_least() -> None:
    s = spec("* * * * *", "Europe/Berlin")
    got = slots.span(s, at("2026-01-01T00:00:00+00:00"), at("2026-03-01T00:00:00+00:00"))
    assert got.count == slots.COUNT_LIMIT and not got.complete
    assert got.last is not None and got.last.key == "2026-03-01T00:00:00.000Z"
    small = slots.span(
        spec("0 8 * * *"), at("2026-01-01T00:00:00+00:00"), at("2026-01-31T09:00:00+00:00")
    )
    assert (small.count, small.complete) == (31, True)
    assert (
        slots.span(s, at("2026-01-01T00:00:00+00:00"), at("2026-01-01T00:00:00+00:00")).count == 0
    )


def test_slots_between_hands_out_batches_in_order() -> None:
    s = spec("0 * * * *", "Europe/Berlin")
    first = slots.slots_between(
        s, at("2026-10-24T22:30:00+00:00"), at("2026-10-25T06:00:00+00:00"), 3
    )
    rest = slots.slots_between(s, first[-1].at, at("2026-10-25T06:00:00+00:00"), 100)
    assert len(first) + len(rest) == 8 and rest[-1].key == "2026-10-25T06:00:00.000Z"


# --- blackouts and jitter


def test_blackouts_mark_slots_on_the_local_wall_clock() -> None:
    s = spec(
        "0 * * * *",
        "Europe/Berlin",
        blackout=(
            Blackout(weekly="Sun 02:00-04:00"),
            Blackout(start="2026-12-24", end="2026-12-26"),
        ),
    )
    got = slots.next_slots(s, at("2026-10-24T23:30:00+00:00"), 4)
    # 02:00+02, 02:00+01 and 03:00+01 are in the window; 04:00 is not.
    assert [x.blackout for x in got] == ["Sun 02:00-04:00"] * 3 + [None]
    assert slots.blacked_out(s, at("2026-12-26T22:59:00+00:00")) == "2026-12-24 to 2026-12-26"
    assert slots.blacked_out(s, at("2026-12-26T23:00:00+00:00")) is None  # 27 Dec, 00:00 local


def test_jitter_delays_the_start_not_the_slot() -> None:
    s = spec("*/5 * * * *", jitter=30.0)
    slot = slots.next_slots(s, at("2026-01-01T00:00:00+00:00"), 1)[0]
    delays = {t: slots.start_delay(s, slot, t) for t in ("db", "replica", "other")}
    assert all(0 <= d < 30 for d in delays.values())
    assert len(set(delays.values())) == 3  # targets spread out
    assert slots.start_delay(s, slot, "db") == delays["db"]  # every scheduler agrees
    assert slot.key == "2026-01-01T00:05:00.000Z"
    assert slots.start_delay(spec("*/5 * * * *"), slot, "db") == 0.0


def test_the_starting_deadline_defaults_to_the_interval_at_most_an_hour() -> None:
    assert spec(None, every=300.0).starting_deadline == 300.0
    assert spec("*/15 * * * *").starting_deadline == 900.0
    assert spec("0 8 * * 1-5").starting_deadline == 3600.0
    assert spec(None, every=1.0).starting_deadline == 1.0
    assert spec("0 8 * * *", starting_deadline=600.0).starting_deadline == 600.0


def test_the_inventorys_zone_is_the_default_and_utc_the_last() -> None:
    schedule = Schedule(cron="0 8 * * *")
    assert compile_schedule("p", schedule, "Europe/Berlin").timezone == "Europe/Berlin"
    assert compile_schedule("p", schedule, None).timezone == "UTC"
    own = Schedule(cron="0 8 * * *", timezone="America/New_York")
    assert compile_schedule("p", own, "Europe/Berlin").timezone == "America/New_York"
