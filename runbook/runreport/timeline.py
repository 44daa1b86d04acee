"""The timeline picture: an inline SVG, one row per step.

Each step that ran is a bar from its start for its duration, coloured by its
status; a step with a target has a dashed outline to where the target ends
and a tick there (`line.target`), so a bar past its tick is over target.
Objectives are vertical lines at their targets across the chart
(`line.objective`), with a marker where the actual landed. Every element has
a class and data attributes so the structure can be checked; text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape

from runbook.runreport.document import Document, Item

WIDTH = 960
LABEL_W = 330
RIGHT = 24
ROW = 22
TOP = 46
COLORS = {
    "ok": "#2e7d32",
    "gate_failed": "#e65100",
    "failed": "#c62828",
    "interrupted": "#6a1b9a",
    "unknown": "#6a1b9a",
    "rolled_back": "#1565c0",
    "declined": "#8d6e63",
    "skipped": "#9e9e9e",
    "not_run": "#bdbdbd",
    "running": "#f9a825",
}
# Tick spacings that read as time: milliseconds to days.
_TICKS = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30,
    60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
)  # fmt: skip


def scale_max(span: float) -> tuple[float, float]:
    """A round end for the axis, and its tick spacing (at most 10 ticks)."""
    span = max(span, 0.001)
    for tick in _TICKS:
        if span / tick <= 10:
            return math.ceil(span / tick - 1e-9) * tick, tick
    tick = math.ceil(span / 10 / 86400) * 86400
    return math.ceil(span / tick) * tick, tick


def seconds_label(value: float) -> str:
    if value == 0:
        return "0"
    if value >= 3600:
        return f"{round(value / 3600, 2):g}h"
    if value >= 60:
        return f"{round(value / 60, 2):g}m"
    if value >= 1:
        return f"{value:g}s"
    return f"{value * 1000:g}ms"


def _short(text: str, limit: int = 44) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(doc: Document) -> str:
    end, tick = scale_max(doc.span_s)
    chart = WIDTH - LABEL_W - RIGHT
    rows = len(doc.items)
    height = TOP + rows * ROW + 56

    def x(seconds: float) -> float:
        return round(LABEL_W + chart * min(seconds, end) / end, 2)

    out = [
        f'<svg class="timeline" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(doc.title)}: steps against time">',
        '<g class="axis">',
    ]
    value = 0.0
    while value <= end + 1e-9:
        px = x(value)
        out.append(
            f'<line class="tick" x1="{px}" y1="{TOP - 6}" x2="{px}" y2="{TOP + rows * ROW}"/>'
            f'<text class="tick-label" x="{px}" y="{TOP - 10}">{seconds_label(value)}</text>'
        )
        value += tick
    out.append("</g>")
    out += _objectives(doc, x, rows)
    for row, item in enumerate(doc.items):
        out.append(_row(item, row, x))
    out.append(_legend(doc, height))
    out.append("</svg>")
    return "\n".join(out)


Scale = Callable[[float], float]


def _objectives(doc: Document, x: Scale, rows: int) -> list[str]:
    out = []
    bottom = TOP + rows * ROW
    by_target: dict[float, list[str]] = {}
    for o in doc.objectives:
        name = escape(o.name)
        if o.target_s is not None:
            by_target.setdefault(o.target_s, []).append(o.name)
            px = x(o.target_s)
            out.append(
                f'<line class="objective status-{escape(o.status.replace(" ", "-"))}" '
                f'data-objective="{name}" x1="{px}" y1="{TOP - 4}" x2="{px}" y2="{bottom}">'
                f"<title>{name}: target {seconds_label(o.target_s)}</title></line>"
            )
        if o.actual_s is not None:
            px = x(o.actual_s)
            out.append(
                f'<path class="objective-actual status-{escape(o.status.replace(" ", "-"))}" '
                f'data-objective="{name}" d="M{px - 5},{TOP - 22} L{px + 5},{TOP - 22} '
                f'L{px},{TOP - 14} Z"><title>{name}: {seconds_label(o.actual_s)} '
                f"({escape(o.status)})</title></path>"
            )
    # One label per target (objectives often share one), kept inside the picture.
    for i, (target, names) in enumerate(sorted(by_target.items())):
        px = x(target)
        anchor, at = ("end", px - 4) if px > WIDTH - 220 else ("start", px + 4)
        text = escape(", ".join(names)) + f" ≤ {seconds_label(target)}"
        out.append(
            f'<text class="objective-label" text-anchor="{anchor}" x="{at}" '
            f'y="{12 + 11 * (i % 2)}">{text}</text>'
        )
    return out


def _row(item: Item, row: int, x: Scale) -> str:
    y = TOP + row * ROW
    number = escape(item.number)
    name = escape(item.name)
    status = escape(item.status)
    label = escape(_short(f"{item.number}  {item.name}"))
    parts = [
        f'<g class="step" data-step="{number}" data-status="{status}">',
        f"<title>{number} {name}: {status}"
        + (f", {seconds_label(item.duration_s)}" if item.duration_s is not None else "")
        + (f" (target {seconds_label(item.target_s)})" if item.target_s is not None else "")
        + "</title>",
        f'<text class="label{" rollback" if item.phase == "rollback" else ""}" x="{LABEL_W - 8}" '
        f'y="{y + 15}">{label}</text>',
    ]
    if item.start_s is not None:
        left = x(item.start_s)
        width = max(x(item.start_s + (item.duration_s or 0)) - left, 2.0)
        parts.append(
            f'<rect class="bar status-{status}" x="{left}" y="{y + 4}" width="{round(width, 2)}" '
            f'height="{ROW - 8}" fill="{COLORS.get(item.status, "#757575")}"/>'
        )
        if item.target_s is not None:
            reach = x(item.start_s + item.target_s)
            parts.append(
                f'<rect class="target-span" x="{left}" y="{y + 2}" '
                f'width="{round(max(reach - left, 1.0), 2)}" height="{ROW - 4}"/>'
                f'<line class="target verdict-{escape(item.verdict or "")}" data-step="{number}" '
                f'x1="{reach}" y1="{y + 1}" x2="{reach}" y2="{y + ROW - 1}"/>'
            )
    return "".join(parts) + "</g>"


def _legend(doc: Document, height: int) -> str:
    seen = sorted({i.status for i in doc.items})
    parts = [f'<g class="legend" transform="translate({LABEL_W},{height - 30})">']
    offset = 0
    for status in seen:
        color = COLORS.get(status, "#757575")
        parts.append(
            f'<rect class="swatch status-{escape(status)}" x="{offset}" y="0" width="12" '
            f'height="12" fill="{color}"/><text x="{offset + 16}" y="10">{escape(status)}</text>'
        )
        offset += 24 + 8 * len(status)
    if any(i.target_s is not None for i in doc.items):
        parts.append(
            f'<rect class="target-span" x="{offset}" y="0" width="18" height="12"/>'
            f'<text x="{offset + 22}" y="10">target</text>'
        )
    parts.append("</g>")
    return "".join(parts)
