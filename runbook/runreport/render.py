"""A report document as JSON, Markdown or one self-contained HTML file.

The HTML carries its style inline and the timeline as inline SVG: no script,
no font, no image, nothing fetched from anywhere, so it opens the same from a
mail attachment years later. Every text from the journal is escaped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from html import escape
from typing import Any

from runbook.runreport import timeline
from runbook.runreport.document import Document, Item

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1000px;color:#212121}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:6px 0} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5} .pass,.ok{color:#2e7d32;font-weight:600} .fail,.failed,.gate_failed{color:#c62828;font-weight:600}
.muted{color:#757575} .kind{font-size:12px;color:#757575;text-transform:uppercase;letter-spacing:.05em}
svg.timeline{font:11px system-ui,sans-serif;background:#fff;border:1px solid #eee}
svg .tick{stroke:#eee} svg .tick-label{fill:#757575;text-anchor:middle}
svg .label{text-anchor:end;fill:#212121} svg .label.rollback{fill:#1565c0;font-style:italic}
svg .target-span{fill:none;stroke:#424242;stroke-dasharray:3 2;stroke-width:1}
svg line.target{stroke:#212121;stroke-width:2} svg line.target.verdict-fail{stroke:#c62828}
svg line.objective{stroke:#1565c0;stroke-width:1.5;stroke-dasharray:6 3}
svg line.objective.status-fail{stroke:#c62828} svg .objective-label{fill:#1565c0;font-weight:600}
svg .objective-actual{fill:#1565c0} svg .objective-actual.status-fail{fill:#c62828}
svg .legend text{fill:#424242}
"""


def to_json(doc: Document) -> str:
    return json.dumps(doc.as_dict(), indent=2, default=str) + "\n"


def _duration(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 60:
        return f"{value / 60:.1f} min"
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def _cell(value: Any) -> str:
    text = "-" if value is None or value == "" else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _md(value: Any) -> str:
    """A Markdown cell: HTML in it escaped (renderers pass raw HTML through)."""
    return escape(_cell(value), quote=False)


def _md_table(header: list[str], rows: Iterable[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines


def _step_row(i: Item) -> list[Any]:
    return [
        i.number,
        i.name + (" (rollback)" if i.phase == "rollback" else ""),
        i.run,
        i.kind,
        i.status,
        _duration(i.start_s),
        _duration(i.duration_s),
        _duration(i.target_s),
        i.verdict,
    ]


STEP_HEADER = ["#", "step", "run", "kind", "status", "at", "took", "target", "verdict"]


def to_markdown(doc: Document) -> str:
    out = [f"# {_md(doc.title)}", "", f"*{doc.kind} report*", ""]
    out += _md_table(["", ""], ([k, v] for k, v in doc.facts.items()))
    if doc.objectives:
        out += ["", "## Objectives", ""]
        out += _md_table(
            ["objective", "target", "actual", "result"],
            (
                [o.name, _duration(o.target_s), _duration(o.actual_s), o.status]
                for o in doc.objectives
            ),
        )
    out += ["", "## Timeline", ""]
    out += _md_table(STEP_HEADER, (_step_row(i) for i in doc.items))
    for title, rows, keys in _sections(doc):
        out += ["", f"## {title}", ""]
        out += _md_table(keys, ([r.get(k) for k in keys] for r in rows))
    for note in doc.notes:
        out += ["", f"> {_md(note)}"]
    return "\n".join(out) + "\n"


def _sections(doc: Document) -> list[tuple[str, tuple[dict[str, Any], ...], list[str]]]:
    return [
        (title, rows, keys)
        for title, rows, keys in (
            ("People", doc.participants, ["name", "role"]),
            ("Answers", doc.answers, ["number", "step", "by", "answered_after_s", "answer"]),
            ("Notifications", doc.notifications, ["run", "what", "state"]),
            ("Findings", doc.findings, ["text", "by", "at"]),
            ("Corrective actions", doc.actions, ["text", "owner", "due", "by", "at"]),
            ("Sign-offs", doc.signoffs, ["by", "at", "text"]),
        )
        if rows
    ]


def _html_table(header: list[str], rows: Iterable[list[Any]], classes: int | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header) if any(header) else ""
    body = []
    for row in rows:
        cells = []
        for n, value in enumerate(row):
            text = escape(_cell(value))
            css = f' class="{escape(str(value))}"' if classes is not None and n == classes else ""
            cells.append(f"<td{css}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    top = f"<tr>{head}</tr>" if head else ""
    return f"<table>{top}{''.join(body)}</table>"


def to_html(doc: Document) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(doc.title)}</title><style>{STYLE}</style></head><body>",
        f'<div class="kind">{escape(doc.kind)} report</div><h1>{escape(doc.title)}</h1>',
        _html_table(["", ""], ([k, v] for k, v in doc.facts.items() if v not in (None, ""))),
    ]
    if doc.objectives:
        parts.append("<h2>Objectives</h2>")
        parts.append(
            _html_table(
                ["objective", "target", "actual", "result"],
                (
                    [o.name, _duration(o.target_s), _duration(o.actual_s), o.status]
                    for o in doc.objectives
                ),
                classes=3,
            )
        )
    parts.append("<h2>Timeline</h2>")
    parts.append(timeline.render(doc))
    parts.append(_html_table(STEP_HEADER, (_step_row(i) for i in doc.items), classes=4))
    for title, rows, keys in _sections(doc):
        parts.append(f"<h2>{escape(title)}</h2>")
        parts.append(_html_table(keys, ([r.get(k) for k in keys] for r in rows)))
    for note in doc.notes:
        parts.append(f'<p class="muted">{escape(note)}</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render(doc: Document, fmt: str) -> str:
    if fmt == "json":
        return to_json(doc)
    if fmt == "md":
        return to_markdown(doc)
    if fmt == "html":
        return to_html(doc)
    raise ValueError(f"unknown format {fmt!r}")
