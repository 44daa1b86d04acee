"""The timeline picture's structure: a group and a bar per step that ran, a
row with no bar for one that never began, a tick per target, a line per
objective, readable labels; from 1 to 300 steps."""

from __future__ import annotations

import re

from runbook.runreport import timeline
from runbook.runreport.document import Document, Item, Objective
from tests.runreport.htmlcheck import HOSTILE, Tags, classes, escaped, parse
from tests.runreport.samples import drill


def picture(doc: Document) -> Tags:
    svg = timeline.render(doc)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    return parse(svg)


def test_a_mark_per_step_target_and_objective() -> None:
    doc = drill(14)
    tags = picture(doc)
    ran = [i.number for i in doc.items if i.started]
    assert [g["data-step"] for g in classes(tags, "g", "step")] == ran
    assert [g["data-step"] for g in classes(tags, "g", "unstarted")] == ["7", "14"]
    bars = classes(tags, "rect", "bar")
    assert len(bars) == len(ran)
    assert [b["class"] for b in bars[:3]] == ["bar status-ok", "bar status-ok", "bar status-failed"]
    # A target tick per step that began with a target; 7 has one but never began.
    assert [t["data-step"] for t in classes(tags, "line", "target")] == [
        "1",
        "3",
        "5",
        "9",
        "11",
        "13",
    ]
    assert all("verdict-fail" in (t["class"] or "") for t in classes(tags, "line", "target"))
    assert len(classes(tags, "rect", "target-span")) == 6 + 1  # and one in the legend
    assert [o["data-objective"] for o in classes(tags, "line", "objective")] == [
        "time to respond",
        "time to mitigate",
        "time to recover",
        HOSTILE,
    ]
    # The actual's marker only where the objective was reached.
    reached = [o["data-objective"] for o in classes(tags, "path", "objective-actual")]
    assert reached == ["time to respond", HOSTILE]


def test_labels_of_objectives_do_not_overlap() -> None:
    tags = picture(drill(3))
    labels = classes(tags, "text", "objective-label")
    assert len(labels) == 4
    # Two objectives share the 15 min target: their labels sit in different lanes.
    same = [float(a["y"] or 0) for a in labels if a["data-objective"].startswith("time to m")]  # type: ignore[union-attr]
    respond = [float(a["y"] or 0) for a in labels if a["data-objective"] == "time to respond"]
    assert same != respond


def test_a_step_of_no_time_still_shows_and_long_names_are_cut_with_the_full_name_kept() -> None:
    name = "a very long step name that goes on and on " * 3
    doc = Document(
        title="t",
        kind="run",
        facts={},
        items=(
            Item("1", name, "query", "main", "ok", 0.0, 0.0),
            Item("2", "x", "sql", "main", "ok", 0.0, 60.0),
        ),
    )
    svg = timeline.render(doc)
    tags = parse(svg)
    widths = [float(r["width"] or 0) for r in classes(tags, "rect", "bar")]
    assert widths[0] >= timeline.MIN_BAR and widths[1] > 500
    label = re.search(r'<text class="label"[^>]*>([^<]*)</text>', svg)
    assert label is not None and label.group(1).endswith("…") and len(label.group(1)) < 50
    assert f"<title>1 {name}: ok, 0ms</title>" in svg  # the tooltip has it whole


def test_the_axis_reads_in_seconds_and_minutes() -> None:
    doc = Document("t", "run", {}, items=(Item("1", "x", "sql", "main", "ok", 0.0, 150.0),))
    labels = re.findall(r'class="tick-label"[^>]*>([^<]*)<', timeline.render(doc))
    assert labels[0] == "0" and labels[-1] == "2min 30s" and "1min" in labels and "45s" in labels
    quick = Document("t", "run", {}, items=(Item("1", "x", "sql", "main", "ok", 0.0, 0.004),))
    assert re.findall(r'class="tick-label"[^>]*>([^<]*)<', timeline.render(quick))[-1] == "4ms"


def test_one_step_and_three_hundred() -> None:
    one = picture(drill(1))
    assert len(classes(one, "g", "step")) == 1
    doc = drill(300)
    tags = picture(doc)
    assert len(classes(tags, "g", "step")) == len([i for i in doc.items if i.started])
    assert len(classes(tags, "g", "step")) + len(classes(tags, "g", "unstarted")) == 300
    svg = next(a for t, a in tags.seen if t == "svg")
    assert svg["width"] == str(timeline.WIDTH)
    assert int(svg["height"] or 0) >= 300 * timeline.ROW
    # The tick labels are repeated under a long chart.
    assert len(classes(tags, "text", "tick-label")) % 2 == 0


def test_every_text_is_escaped() -> None:
    svg = timeline.render(drill(4))
    escaped(svg)


def test_objectives_alone_and_no_steps() -> None:
    doc = Document(
        "t", "drill", {}, objectives=(Objective("time to recover", 60.0, None, "not reached"),)
    )
    tags = picture(doc)
    assert classes(tags, "g", "step") == [] and len(classes(tags, "line", "objective")) == 1
