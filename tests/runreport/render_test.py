"""One renderer, three formats: the JSON is the document, versioned, with
every key always there; `render` picks the format."""

from __future__ import annotations

import json

import pytest

from runbook.runreport import render
from runbook.runreport.document import Document
from tests.runreport.htmlcheck import HOSTILE, classes, parse, self_contained
from tests.runreport.samples import drill

# The drill's tests check its scorecard with these.
__all__ = ["classes", "parse", "self_contained"]

KEYS = [
    "format",
    "title",
    "kind",
    "facts",
    "subtitle",
    "items",
    "objectives",
    "participants",
    "answers",
    "findings",
    "actions",
    "signoffs",
    "notifications",
    "sections",
    "notes",
]


def test_json_is_the_document_with_stable_keys() -> None:
    data = json.loads(render.to_json(drill(3)))
    assert list(data) == KEYS and data["format"] == 1
    assert list(data["items"][0]) == [
        "number",
        "name",
        "kind",
        "phase",
        "status",
        "start_s",
        "duration_s",
        "target_s",
        "verdict",
        "error",
        "run",
        "reason",
    ]
    assert [o["status"] for o in data["objectives"]] == [
        "pass",
        "not reached",
        "not reached",
        "fail",
    ]
    assert data["participants"][1] == {"name": HOSTILE, "role": HOSTILE}
    assert data["answers"] == [
        {
            "step": "Stop production?",
            "by": "alice",
            "answered_after_s": 4.5,
            "answer": "ok",
            "number": "4",
        }
    ]
    assert data["actions"][0]["text"] == HOSTILE and data["actions"][0]["owner"] == "carol"
    assert data["sections"][0]["rows"] == [[HOSTILE, "0 s"], ["drop fk"]]
    # A plain run's document has the same keys, empty where a run has nothing.
    empty = json.loads(render.to_json(Document("t", "run", {})))
    assert list(empty) == KEYS and empty["items"] == [] and empty["objectives"] == []


@pytest.mark.parametrize("fmt", ["json", "md", "html"])
def test_render_picks_the_format(fmt: str) -> None:
    text = render.render(drill(2), fmt)
    assert text.endswith("\n")
    if fmt == "html":
        self_contained(text)
        assert len(classes(parse(text), "g", "step")) == 2


def test_an_unknown_format_is_an_error() -> None:
    with pytest.raises(ValueError, match="pdf"):
        render.render(drill(1), "pdf")
