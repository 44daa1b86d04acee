"""Times in words, and the axis's round ends."""

from __future__ import annotations

import pytest

from runbook.runreport.units import duration, scale_max, short, ticks


@pytest.mark.parametrize(
    ("span", "end", "tick"),
    [
        (0.0, 0.001, 0.001),
        (0.004, 0.004, 0.001),
        (0.18, 0.18, 0.02),
        (7.3, 8, 1),
        (150, 150, 15),
        (900, 960, 120),  # 15 min: ticks of 2 min
        (3600, 3600, 600),
        (40 * 86400, 40 * 86400, 4 * 86400),
    ],
)
def test_scale_max(span: float, end: float, tick: float) -> None:
    assert scale_max(span) == pytest.approx((end, tick))


def test_ticks_are_counted_not_summed() -> None:
    assert ticks(0.3, 0.1) == [0.0, 0.1, 0.2, 0.3]
    assert len(ticks(86400 * 3, 86400)) == 4


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0"),
        (0.0004, "0.4ms"),
        (0.25, "250ms"),
        (1.5, "1.5s"),
        (60, "1min"),
        (75, "1min 15s"),
        (900, "15min"),
        (3600, "1h"),
        (5400, "1h 30min"),
    ],
)
def test_short(seconds: float, text: str) -> None:
    assert short(seconds) == text


def test_duration_in_tables() -> None:
    assert duration(None) == "-"
    assert (
        duration(0.0184) == "0.018 s"
        and duration(12.34) == "12.3 s"
        and duration(900) == "15.0 min"
    )
