"""A report document in the format asked for: JSON, Markdown or one
self-contained HTML file (`markdown`, `html`, with `timeline`'s picture).

The JSON is the document itself, versioned (`"format": 1`): every key is
always there, in the order the dataclasses give them.
"""

from __future__ import annotations

import json

from runbook.runreport.document import Document
from runbook.runreport.html import to_html
from runbook.runreport.markdown import to_markdown

FORMATS = ("md", "html", "json")

__all__ = ["FORMATS", "render", "to_html", "to_json", "to_markdown"]


def to_json(doc: Document) -> str:
    return json.dumps(doc.as_dict(), indent=2, ensure_ascii=False, default=str) + "\n"


def render(doc: Document, fmt: str) -> str:
    if fmt == "json":
        return to_json(doc)
    if fmt == "md":
        return to_markdown(doc)
    if fmt == "html":
        return to_html(doc)
    raise ValueError(f"unknown format {fmt!r}")
