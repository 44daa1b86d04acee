"""A report document as Markdown: a heading, the facts, then a table per
section, the timeline as a table of the steps with their times and targets.

Every text is escaped for a table cell: `|` and line breaks cannot break the
table, and HTML in it is escaped (Markdown renderers pass raw HTML through).
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

from runbook.runreport import sections
from runbook.runreport.document import Document
from runbook.runreport.sections import Table


def cell(value: Any) -> str:
    text = "-" if value is None or value == "" else str(value)
    text = " ".join(text.split())  # line breaks and runs of blanks: one space
    return escape(text, quote=False).replace("|", "\\|")


def table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    head = list(header)
    lines = ["| " + " | ".join(cell(h) if h else " " for h in head) + " |"]
    lines.append("|" + "---|" * len(head))
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def _section(t: Table, level: str = "##") -> list[str]:
    return ["", f"{level} {cell(t.title)}", "", *table(t.header, t.rows)]


def to_markdown(doc: Document) -> str:
    out = [f"# {cell(doc.title)}", "", f"*{cell(doc.kind)} report*"]
    if doc.subtitle:
        out[-1] += f" — {cell(doc.subtitle)}"
    out += ["", *table(("", ""), sections.facts(doc))]
    objectives = sections.objectives(doc)
    if objectives is not None:
        out += _section(objectives)
    steps = sections.steps(doc)
    out += ["", "## Timeline", "", *table(steps.header, steps.rows)]
    for t in sections.after_timeline(doc):
        out += _section(t)
    for note in doc.notes:
        out += ["", f"> {cell(note)}"]
    return "\n".join(out) + "\n"
