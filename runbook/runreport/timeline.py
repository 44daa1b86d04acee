"""The timeline picture: an inline SVG, one row per step, time across.

A step that ran is a `g.step` holding a bar (`rect.bar.status-…`) from its
start for its duration, at least a couple of pixels wide, and its duration in
words beside it. A step with a target has a dashed outline from its start to
where the target ends and a tick there (`line.target`), so a bar past its tick
is over target. A step that never began (skipped, not run) is a `g.unstarted`
row: its name and status, no bar. Objectives are dashed vertical lines at
their targets (`line.objective`), labelled above the chart, with a marker
where the actual landed (`path.objective-actual`). Every element has a class
and data attributes, so the structure can be checked; every text is escaped.
The width is fixed; the height grows with the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from runbook.runreport.document import Document, Item, Objective
from runbook.runreport.units import scale_max, short, ticks

WIDTH = 960
LABEL_W = 320
RIGHT = 28  # room for the last tick's label
ROW = 22
LANE = 14
LEGEND = 18
MIN_BAR = 2.0
COLORS = {
    "ok": "#2e7d32",
    "gate_failed": "#e65100",
    "failed": "#c62828",
    "unknown": "#6a1b9a",
    "rolled_back": "#1565c0",
    "declined": "#8d6e63",
    "running": "#f9a825",
}
OTHER = "#757575"

Scale = Callable[[float], float]


def _width(text: str, px: float = 11) -> float:
    """About how wide a text is drawn (sans-serif, average glyphs)."""
    return len(text) * px * 0.6


def _short(text: str, limit: int = 46) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _css(value: str) -> str:
    return escape(value.replace(" ", "-").replace("_", "-"))


def _objective_text(o: Objective) -> str:
    head = f"{o.name} ≤ {short(o.target_s)}" if o.target_s is not None else o.name
    reached = f"{short(o.actual_s)}, " if o.actual_s is not None else ""
    return f"{head}: {reached}{o.status}"


def _lanes(doc: Document, x: Scale) -> list[tuple[Objective, int, str, float]]:
    """Each objective's label (in the document's order): its lane (a line above
    the chart), anchor and x, the lanes filled left to right so no two overlap."""
    at = [o for o in doc.objectives if o.target_s is not None or o.actual_s is not None]

    def where(o: Objective) -> float:
        return x(o.target_s if o.target_s is not None else o.actual_s or 0)

    placed: dict[int, tuple[Objective, int, str, float]] = {}
    ends: list[float] = []  # the right end of the last label in each lane
    for n in sorted(range(len(at)), key=lambda n: where(at[n])):
        o, px = at[n], where(at[n])
        wide = _width(_objective_text(o)) + 6
        anchor, left = ("start", px + 3) if px + wide < WIDTH - 4 else ("end", px - 3 - wide)
        lane = next((k for k, end in enumerate(ends) if end < left), len(ends))
        if lane == len(ends):
            ends.append(0.0)
        ends[lane] = left + wide
        placed[n] = (o, lane, anchor, px + 3 if anchor == "start" else px - 3)
    return [placed[n] for n in range(len(at))]


def render(doc: Document) -> str:
    end, step = scale_max(doc.span_s)
    chart = WIDTH - LABEL_W - RIGHT

    def x(seconds: float) -> float:
        return round(LABEL_W + chart * min(max(seconds, 0.0), end) / end, 2)

    labels = _lanes(doc, x)
    lanes = max((lane for _, lane, _, _ in labels), default=-1) + 1
    top = 8 + lanes * LANE + 22  # objective labels, then the tick labels
    rows = len(doc.items)
    bottom = top + rows * ROW
    repeat = rows > 20  # the tick labels again below a long chart
    legend_y = bottom + (34 if repeat else 20)
    legend, lines = _legend(doc)
    height = legend_y + lines * LEGEND + 4
    out = [
        f'<svg class="timeline" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(doc.title)}: the steps against time">',
        f"<title>{escape(doc.title)}: the steps against time</title>",
    ]
    out += [
        f'<rect class="stripe" x="0" y="{top + n * ROW}" width="{WIDTH}" height="{ROW}"/>'
        for n in range(1, rows, 2)
    ]
    out.append('<g class="axis">')
    for value in ticks(end, step):
        px = x(value)
        text = short(value)
        out.append(
            f'<line class="tick" x1="{px}" y1="{top - 4}" x2="{px}" y2="{bottom}"/>'
            f'<text class="tick-label" x="{px}" y="{top - 8}">{text}</text>'
        )
        if repeat:
            out.append(f'<text class="tick-label" x="{px}" y="{bottom + 14}">{text}</text>')
    out.append("</g>")
    out += _objectives(labels, x, top, bottom)
    for row, item in enumerate(doc.items):
        out.append(_row(item, top + row * ROW, x))
    out.append(f'<g class="legend" transform="translate(16,{legend_y})">{legend}</g>')
    out.append("</svg>")
    return "\n".join(out)


def _objectives(
    labels: list[tuple[Objective, int, str, float]], x: Scale, top: int, bottom: int
) -> list[str]:
    out = []
    for o, lane, anchor, at in labels:
        name = escape(o.name)
        status = _css(o.status)
        if o.target_s is not None:
            px = x(o.target_s)
            out.append(
                f'<line class="objective status-{status}" data-objective="{name}" '
                f'x1="{px}" y1="{top - 4}" x2="{px}" y2="{bottom}">'
                f"<title>{name}: target {short(o.target_s)}</title></line>"
            )
        if o.actual_s is not None:
            px = x(o.actual_s)
            out.append(
                f'<path class="objective-actual status-{status}" data-objective="{name}" '
                f'd="M{px - 5},{top - 4} L{px + 5},{top - 4} L{px},{top + 4} Z">'
                f"<title>{name}: {short(o.actual_s)} ({escape(o.status)})</title></path>"
            )
        out.append(
            f'<text class="objective-label status-{status}" data-objective="{name}" '
            f'text-anchor="{anchor}" x="{round(at, 2)}" y="{8 + lane * LANE + 10}">'
            f"{escape(_objective_text(o))}</text>"
        )
    return out


def _title(item: Item) -> str:
    text = f"{item.number} {item.name}: {item.status}"
    if item.duration_s is not None:
        text += f", {short(item.duration_s) if item.duration_s else '0ms'}"
    if item.target_s is not None:
        text += f" (target {short(item.target_s)}: {item.verdict})"
    if item.run:
        text += f" [{item.run}]"
    return f"<title>{escape(text)}</title>"


def _label(item: Item, y: int, muted: bool) -> str:
    css = "label" + (" rollback" if item.phase == "rollback" else "") + (" muted" if muted else "")
    text = escape(_short(f"{item.number}  {item.name}"))
    return f'<text class="{css}" x="{LABEL_W - 8}" y="{y + 15}">{text}</text>'


def _row(item: Item, y: int, x: Scale) -> str:
    number = escape(item.number)
    status = escape(item.status)
    if item.start_s is None:
        return (
            f'<g class="unstarted" data-step="{number}" data-status="{status}">{_title(item)}'
            f'{_label(item, y, True)}<text class="status-text" x="{LABEL_W + 6}" '
            f'y="{y + 15}">{escape(item.status.replace("_", " "))}</text></g>'
        )
    parts = [
        f'<g class="step" data-step="{number}" data-status="{status}">',
        _title(item),
        _label(item, y, False),
    ]
    left = x(item.start_s)
    right = max(x(item.start_s + (item.duration_s or 0)), left + MIN_BAR)
    reach = right
    if item.target_s is not None:
        reach = x(item.start_s + item.target_s)
        parts.append(
            f'<rect class="target-span" x="{left}" y="{y + 2}" '
            f'width="{round(max(reach - left, 1.0), 2)}" height="{ROW - 4}"/>'
        )
    parts.append(
        f'<rect class="bar status-{_css(item.status)}" x="{left}" y="{y + 5}" '
        f'width="{round(right - left, 2)}" height="{ROW - 10}" '
        f'fill="{COLORS.get(item.status, OTHER)}"/>'
    )
    if item.target_s is not None:
        parts.append(
            f'<line class="target verdict-{_css(item.verdict or "none")}" data-step="{number}" '
            f'x1="{reach}" y1="{y + 1}" x2="{reach}" y2="{y + ROW - 1}"/>'
        )
    parts.append(_took(item, left, max(right, reach), y))
    parts.append("</g>")
    return "".join(parts)


def _took(item: Item, left: float, right: float, y: int) -> str:
    """The duration in words: right of the bar (and its target), else left of it,
    else inside it."""
    if item.duration_s is None:
        text = item.status
    else:
        text = short(item.duration_s) if item.duration_s else "0ms"
    wide = _width(text, 10)
    if right + 4 + wide < WIDTH - 2:
        where = f'x="{round(right + 4, 2)}"'
    elif left - 4 - wide > LABEL_W:
        where = f'x="{round(left - 4, 2)}" text-anchor="end"'
    else:
        return (
            f'<text class="took inside" x="{round(right - 4, 2)}" text-anchor="end" '
            f'y="{y + 15}">{escape(text)}</text>'
        )
    return f'<text class="took" {where} y="{y + 15}">{escape(text)}</text>'


def _legend(doc: Document) -> tuple[str, int]:
    """The legend's entries (the statuses shown, the target and objective marks,
    rollback steps), wrapped to the picture's width; and how many lines."""
    started = [i for i in doc.items if i.start_s is not None]
    entries: list[tuple[str, str]] = [
        (
            f'<rect class="swatch status-{_css(status)}" x="0" y="0" width="12" height="12" '
            f'fill="{COLORS.get(status, OTHER)}"/>',
            status.replace("_", " "),
        )
        for status in sorted({i.status for i in started})
    ]
    if any(i.target_s is not None for i in started):
        entries.append(
            (
                '<rect class="target-span" x="0" y="0" width="16" height="12"/>'
                '<line class="target-mark" x1="16" y1="-1" x2="16" y2="13"/>',
                "target",
            )
        )
    if any(o.target_s is not None for o in doc.objectives):
        entries.append(
            ('<line class="objective-mark" x1="8" y1="-2" x2="8" y2="14"/>', "objective")
        )
    if any(i.phase == "rollback" for i in doc.items):
        entries.append(("", "rollback step"))
    parts = []
    at, line = 0.0, 0
    for mark, text in entries:
        wide = 26 + _width(text) + 18
        if at and at + wide > WIDTH - 32:
            at, line = 0.0, line + 1
        parts.append(
            f'<g class="legend-entry" transform="translate({round(at, 2)},{line * LEGEND})">'
            + (f'{mark}<text x="26" y="10">' if mark else '<text class="rollback" x="0" y="10">')
            + f"{escape(text)}</text></g>"
        )
        at += wide if mark else _width(text) + 18
    return "".join(parts), line + 1
