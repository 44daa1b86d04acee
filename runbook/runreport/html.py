"""A report document as one self-contained HTML file.

The style is inline and the timeline inline SVG: no script, no font, no
image, no link, nothing fetched from anywhere, so the file opens the same
from a mail attachment or an evidence folder years later. Every text from the
document is escaped, in text and in attributes alike.
"""

from __future__ import annotations

from html import escape
from typing import Any

from runbook.runreport import sections, timeline
from runbook.runreport.document import Document
from runbook.runreport.sections import Table

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1000px;padding:0 16px;color:#212121}
h1{font-size:22px;margin:0 0 2px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.kind{font-size:12px;color:#757575;text-transform:uppercase;letter-spacing:.05em}
.subtitle{color:#616161;margin:0 0 12px}
table{border-collapse:collapse;margin:6px 0} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5;white-space:nowrap} td.num{white-space:nowrap;text-align:right}
table.facts th{background:none;font-weight:600;color:#424242} table.facts td{word-break:break-word}
.status-ok,.status-pass{color:#2e7d32;font-weight:600}
.status-failed,.status-fail,.status-gate-failed,.status-unknown{color:#c62828;font-weight:600}
.status-skipped,.status-not-run,.status-not-reached{color:#757575}
.muted{color:#757575} .figure{overflow-x:auto}
svg.timeline{font:11px system-ui,sans-serif;background:#fff;border:1px solid #eee;display:block}
svg .stripe{fill:#fafafa} svg .tick{stroke:#e0e0e0} svg .tick-label{fill:#757575;text-anchor:middle}
svg .label{text-anchor:end;fill:#212121} svg .label.rollback{fill:#1565c0;font-style:italic}
svg .label.muted{fill:#9e9e9e} svg .status-text{fill:#9e9e9e;font-style:italic}
svg .took{fill:#616161;font-size:10px} svg .took.inside{fill:#fff}
svg .target-span{fill:none;stroke:#424242;stroke-dasharray:3 2;stroke-width:1}
svg line.target,svg .target-mark{stroke:#212121;stroke-width:2}
svg line.objective,svg .objective-mark{stroke:#1565c0;stroke-width:1.5;stroke-dasharray:6 3}
svg line.objective.status-fail{stroke:#c62828}
svg .objective-label{fill:#1565c0;font-weight:600} svg .objective-label.status-fail{fill:#c62828}
svg .objective-actual{fill:#1565c0} svg .objective-actual.status-fail{fill:#c62828}
svg .legend text{fill:#424242} svg .legend text.rollback{fill:#1565c0;font-style:italic}
"""

# Columns whose values are times: kept on one line, to the right.
_NUMERIC = frozenset({"at", "took", "target", "actual", "answered after"})


def _text(value: Any) -> str:
    return "-" if value is None or value == "" else escape(str(value))


def _css(value: Any) -> str:
    return escape(str(value).replace(" ", "-").replace("_", "-"))


def table(t: Table, css: str | None = None) -> str:
    klass = f' class="{css}"' if css else ""
    head = "".join(f"<th>{escape(h)}</th>" for h in t.header)
    body = []
    for row in t.rows:
        cells = []
        for n, value in enumerate(row):
            classes = []
            if t.header[n] in _NUMERIC:
                classes.append("num")
            if n in t.status and value is not None:
                classes.append(f"status-{_css(value)}")
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{_text(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table{klass}><tr>{head}</tr>{''.join(body)}</table>"


def _facts(doc: Document) -> str:
    rows = "".join(
        f"<tr><th>{escape(k)}</th><td>{_text(v)}</td></tr>" for k, v in sections.facts(doc)
    )
    return f'<table class="facts">{rows}</table>'


def to_html(doc: Document) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(doc.title)}</title><style>{STYLE}</style></head><body>",
        f'<div class="kind">{escape(doc.kind)} report</div><h1>{escape(doc.title)}</h1>',
    ]
    if doc.subtitle:
        parts.append(f'<p class="subtitle">{escape(doc.subtitle)}</p>')
    parts.append(_facts(doc))
    objectives = sections.objectives(doc)
    if objectives is not None:
        parts += ["<h2>Objectives</h2>", table(objectives)]
    parts += [
        "<h2>Timeline</h2>",
        f'<div class="figure">{timeline.render(doc)}</div>',
        table(sections.steps(doc), "steps"),
    ]
    for t in sections.after_timeline(doc):
        parts += [f"<h2>{escape(t.title)}</h2>", table(t)]
    parts += [f'<p class="muted">{escape(note)}</p>' for note in doc.notes]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
