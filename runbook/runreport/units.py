"""Seconds as people read them: a round axis with its ticks, short labels for
the picture, and durations for the tables."""

from __future__ import annotations

import math

# Tick spacings that read as time: milliseconds to days.
_TICKS = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30,
    60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
)  # fmt: skip
DAY = 86400


def scale_max(span: float, most: int = 10) -> tuple[float, float]:
    """A round end for an axis reaching `span` seconds, and its tick spacing
    (at most `most` ticks after 0)."""
    span = max(span, 0.001)
    for tick in _TICKS:
        if span / tick <= most:
            return math.ceil(span / tick - 1e-9) * tick, tick
    tick = math.ceil(span / most / DAY) * DAY
    return math.ceil(span / tick) * tick, tick


def ticks(end: float, tick: float) -> list[float]:
    """0, tick, 2·tick … end (counted, not summed: no drift)."""
    return [round(n * tick, 6) for n in range(round(end / tick) + 1)]


def short(value: float) -> str:
    """A tick's or a marker's label: 0, 250ms, 1.5s, 1min 15s, 2h."""
    if value == 0:
        return "0"
    if value < 1:
        return f"{round(value * 1000, 1):g}ms"
    if value < 60:
        return f"{round(value, 2):g}s"
    whole = round(value)
    if whole < 3600:
        minutes, seconds = divmod(whole, 60)
        return f"{minutes}min" + (f" {seconds}s" if seconds else "")
    hours, minutes = divmod(round(whole / 60), 60)
    return f"{hours}h" + (f" {minutes}min" if minutes else "")


def duration(value: float | None) -> str:
    """A duration in a table: 0.018 s, 12.5 s, 15.0 min; '-' for none."""
    if value is None:
        return "-"
    if value >= 60:
        return f"{value / 60:.1f} min"
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
