"""The HTML report: one self-contained, well-formed file, every text escaped."""

from __future__ import annotations

from runbook.runreport.html import to_html
from tests.runreport.htmlcheck import HOSTILE, classes, escaped, parse, self_contained
from tests.runreport.samples import drill


def test_self_contained_and_balanced() -> None:
    html = to_html(drill(8))
    assert html.startswith("<!DOCTYPE html>")
    self_contained(html)
    tags = parse(html)
    assert [t for t, _ in tags.seen].count("svg") == 1
    assert [t for t, _ in tags.seen].count("style") == 1


def test_every_section_is_there_and_escaped() -> None:
    html = to_html(drill(4))
    escaped(html)
    assert "<script>" not in html and "'single' <b>" not in html
    for title in (
        "Objectives",
        "Timeline",
        "People",
        "Answers",
        "Incidents and notifications",
        "Findings",
        "Corrective actions",
        "Sign-offs",
    ):
        assert f"<h2>{title}</h2>" in html
    assert f"<h2>{HOSTILE}</h2>" not in html  # the drill's own section, escaped
    # A fact with no value is left out.
    assert "nothing" not in html


def test_statuses_style_their_cells_and_times_stay_on_one_line() -> None:
    tags = parse(to_html(drill(3)))
    assert len(classes(tags, "td", "status-failed")) == 1
    assert len(classes(tags, "td", "status-pass")) == 1  # time to respond
    assert len(classes(tags, "td", "num")) > 0


def test_three_hundred_steps() -> None:
    doc = drill(300)
    tags = parse(to_html(doc))
    rows = [a for t, a in tags.seen if t == "tr"]
    assert len(rows) > 300  # a table row per step, besides the picture
