"""What a tick decides for one (schedule, target): catch-up, overlap, blackouts,
pauses and the dead-man's switch, every instant given."""

from __future__ import annotations

import datetime as dt

from runbook.model import Blackout, Schedule
from runbook.schedule.decide import Decision, PairState, decide, next_due
from runbook.schedule.spec import Spec, compile_schedule

UTC = dt.UTC


def spec(cron: str | None = "0 8 * * *", **kw: object) -> Spec:
    schedule = Schedule(cron=cron, timezone=kw.pop("tz", "UTC"), **kw)  # type: ignore[arg-type]
    return compile_schedule("p", schedule, None)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def statuses(d: Decision) -> list[tuple[str, str, int]]:
    return [(r.status.value, r.first.key, r.count) for r in d.rows]


def test_a_slot_on_time_starts() -> None:
    d = decide(spec(), PairState(high_water=at("2026-12-03T08:00")), at("2026-12-04T08:00:00.2"))
    assert statuses(d) == [("started", "2026-12-04T08:00:00.000Z", 1)]
    assert d.start is d.rows[0] and d.page is None
    assert d.start.late is not None and abs(d.start.late - 0.2) < 1e-6


def test_nothing_due_records_nothing() -> None:
    d = decide(spec(), PairState(high_water=at("2026-12-04T08:00")), at("2026-12-04T09:00"))
    assert d == Decision()


def test_a_new_schedule_does_not_page_for_its_past() -> None:
    # Never seen: slots begin one deadline (an hour here) before now.
    d = decide(spec(), PairState(), at("2026-12-04T12:00"))
    assert d.rows == () and d.page is None
    d = decide(spec(), PairState(), at("2026-12-04T08:30"))
    assert statuses(d) == [("started", "2026-12-04T08:00:00.000Z", 1)]


def test_catchup_latest_runs_the_last_slot_late_and_records_the_older_as_one_range() -> None:
    s = spec("*/5 * * * *")  # deadline: 5 minutes
    d = decide(s, PairState(high_water=at("2026-12-04T06:00")), at("2026-12-04T08:02"))
    assert statuses(d) == [
        ("missed", "2026-12-04T06:05:00.000Z", 23),  # 06:05 .. 07:55: one row
        ("started", "2026-12-04T08:00:00.000Z", 1),
    ]
    assert d.rows[0].last is not None and d.rows[0].last.key == "2026-12-04T07:55:00.000Z"
    assert d.page is None  # a newer slot runs: nobody is paged
    assert d.start is not None and d.start.late == 120.0


def test_catchup_latest_pages_when_even_the_last_slot_is_past_its_deadline() -> None:
    d = decide(spec(), PairState(high_water=at("2026-12-02T08:00")), at("2026-12-04T10:00"))
    assert statuses(d) == [("missed", "2026-12-03T08:00:00.000Z", 2)]
    assert d.start is None
    assert d.page is not None and "2 slots did not run" in d.page


def test_catchup_none_runs_only_an_on_time_slot() -> None:
    s = spec(catchup="none")
    d = decide(s, PairState(high_water=at("2026-12-03T08:00")), at("2026-12-04T08:30"))
    assert statuses(d) == [("missed", "2026-12-04T08:00:00.000Z", 1)]
    assert d.page is not None  # it did not run: the dead-man's switch
    d = decide(s, PairState(high_water=at("2026-12-03T08:00")), at("2026-12-04T08:00:30"))
    assert statuses(d) == [("started", "2026-12-04T08:00:00.000Z", 1)]


def test_catchup_all_runs_each_in_order_one_at_a_time() -> None:
    s = spec(catchup="all")
    state = PairState(high_water=at("2026-12-01T08:00"))
    d = decide(s, state, at("2026-12-04T09:00"))
    assert statuses(d) == [("started", "2026-12-02T08:00:00.000Z", 1)]
    assert d.more
    # While that run goes, the backlog waits (it is not skipped).
    waiting = PairState(high_water=at("2026-12-02T08:00"), running="r1")
    assert decide(s, waiting, at("2026-12-04T09:00")) == Decision()


def test_overlap_skip_queue_one_allow() -> None:
    now = at("2026-12-04T08:00:01")
    hw = at("2026-12-03T08:00")
    skip = decide(spec(), PairState(high_water=hw, running="r1"), now)
    assert statuses(skip) == [("skipped", "2026-12-04T08:00:00.000Z", 1)]
    assert skip.rows[0].reason is not None and "r1" in skip.rows[0].reason
    queue = decide(spec(overlap="queue_one"), PairState(high_water=hw, running="r1"), now)
    assert statuses(queue) == [("queued", "2026-12-04T08:00:00.000Z", 1)] and queue.start is None
    full = PairState(high_water=hw, running="r1", queued=True)
    assert statuses(decide(spec(overlap="queue_one"), full, now))[0][0] == "skipped"
    allow = decide(spec(overlap="allow"), PairState(high_water=hw, running="r1"), now)
    assert statuses(allow) == [("started", "2026-12-04T08:00:00.000Z", 1)]


def test_a_blacked_out_slot_is_recorded_not_run_and_pages_no_one() -> None:
    s = spec(blackout=(Blackout(start="2026-12-04", end="2026-12-04"),))
    d = decide(s, PairState(high_water=at("2026-12-03T08:00")), at("2026-12-04T08:00:01"))
    assert statuses(d) == [("blackout", "2026-12-04T08:00:00.000Z", 1)]
    assert d.start is None and d.page is None


def test_slots_while_disabled_are_recorded_paused_once_enabled() -> None:
    s = spec("0 * * * *")
    paused = PairState(high_water=at("2026-12-04T01:00"), paused=True)
    assert decide(s, paused, at("2026-12-04T08:00")) == Decision()
    resumed = PairState(high_water=at("2026-12-04T01:00"), resumed_at=at("2026-12-04T07:30"))
    d = decide(s, resumed, at("2026-12-04T08:00:02"))
    assert statuses(d) == [
        ("paused", "2026-12-04T02:00:00.000Z", 6),
        ("started", "2026-12-04T08:00:00.000Z", 1),
    ]
    assert d.page is None


def test_an_every_schedule_counts_a_long_outage_as_one_range() -> None:
    s = spec(cron=None, every=1.0)
    d = decide(s, PairState(high_water=at("2026-12-01T00:00")), at("2026-12-04T00:00:00.5"))
    assert statuses(d) == [
        ("missed", "2026-12-01T00:00:01.000Z", 3 * 86400 - 1),
        ("started", "2026-12-04T00:00:00.000Z", 1),
    ]


def test_the_next_due_slot_follows_the_high_water() -> None:
    s = spec(cron=None, every=300.0)
    assert next_due(s, PairState(high_water=at("2026-12-04T08:00")), at("2026-12-04T08:01")) == at(
        "2026-12-04T08:05"
    )


def test_dst_a_fixed_hours_job_is_decided_once_in_the_repeated_hour() -> None:
    s = spec("30 2 * * *", tz="Europe/Berlin")
    first = decide(s, PairState(high_water=at("2026-10-24T00:30")), at("2026-10-25T00:30:01"))
    assert statuses(first) == [("started", "2026-10-25T00:30:00.000Z", 1)]  # 02:30+02:00
    # An hour later the wall clock reads 02:30 again (+01:00): nothing is due.
    again = decide(s, PairState(high_water=at("2026-10-25T00:30")), at("2026-10-25T01:30:01"))
    assert again == Decision()


def test_dst_a_fixed_hours_job_fires_once_at_the_shifted_time_in_new_york() -> None:
    s = spec("30 2 * * *", tz="America/New_York")  # 2026-03-08: 02:00 → 03:00
    d = decide(s, PairState(high_water=at("2026-03-07T07:30")), at("2026-03-08T07:00:01"))
    assert statuses(d) == [("started", "2026-03-08T07:00:00.000Z", 1)]  # 03:00-04:00
    assert d.start is not None and d.start.first.shifted
