"""`runbook report RUN_ID` and the renderer drills share: JSON, Markdown and
one self-contained HTML file whose timeline has a mark per step and per target."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import ClassVar

from runbook.runreport import render
from runbook.runreport.document import Document, Item, Objective
from tests.conftest import Project

HOSTILE = "<script>alert(1)</script> & \"quotes\" 'single'"

PLAYBOOK = """name: report-me
kind: check
steps:
  - name: count
    query: SELECT 1 AS n
  - name: wait a little
    query: SELECT pg_sleep(0.2)
  - name: {hostile}
    query: SELECT 2 AS m
    register: m
    gate: {{that: "m.first.m == 3", severity: WARNING, message: "m is not 3"}}
"""


class Tags(HTMLParser):
    """Opened and closed tags, to check the document is balanced."""

    VOID: ClassVar[set[str]] = {
        "meta",
        "br",
        "img",
        "input",
        "link",
        "hr",
        "path",
        "rect",
        "line",
        "circle",
    }

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.seen: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()


def parse(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    tags.close()
    assert not tags.errors and tags.stack == [], (tags.errors, tags.stack)
    return tags


def classes(tags: Tags, tag: str, css: str) -> list[dict[str, str | None]]:
    return [a for t, a in tags.seen if t == tag and css in (a.get("class") or "").split()]


def self_contained(html: str) -> None:
    assert not re.search(r"https?://", html)
    assert "<script" not in html and "<link" not in html and " src=" not in html
    assert "@import" not in html and "url(" not in html


def test_a_run_reported_three_ways(project: Project) -> None:
    project.playbook(PLAYBOOK.format(hostile=json.dumps(HOSTILE)), "r.yaml")
    assert project.run("run", "playbooks/r.yaml").exit_code == 1  # the gate fails
    run_id = project.last_run()["id"]
    doc = json.loads(project.run("report", run_id, "--format", "json").output)
    assert doc["format"] == 1 and doc["kind"] == "run"
    assert [i["status"] for i in doc["items"]] == ["ok", "ok", "gate_failed"]
    assert doc["items"][1]["duration_s"] >= 0.2
    assert doc["facts"]["exit code"] == 1
    md = project.run("report", run_id).output
    assert "| 1 | count |" in md and "| 2 | wait a little |" in md
    assert "<script>" not in md and "&lt;script&gt;" in md
    out = project.root / "r.html"
    assert project.run("report", run_id[:8], "--format", "html", "--out", str(out)).exit_code == 0
    html = out.read_text()
    self_contained(html)
    tags = parse(html)
    steps = classes(tags, "g", "step")
    assert [s["data-step"] for s in steps] == ["1", "2", "3"]
    assert [s["data-status"] for s in steps] == ["ok", "ok", "gate_failed"]
    assert len(classes(tags, "rect", "bar")) == 3
    # Hostile text is escaped wherever it appears: never a tag of its own.
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_an_unknown_run_is_a_clear_error(project: Project) -> None:
    result = project.run("report", "nope")
    assert result.exit_code == 2 and "no run 'nope'" in result.output


def document(steps: int = 4) -> Document:
    items = tuple(
        Item(
            number=str(n),
            name=f"step {n} {HOSTILE}",
            kind="sql",
            phase="main",
            status="ok" if n % 3 else "failed",
            start_s=n * 10.0,
            duration_s=8.0 if n % 2 else 0.0,
            target_s=5.0 if n % 2 else None,
            verdict=("fail" if n % 2 else None),
        )
        for n in range(1, steps + 1)
    )
    objectives = (
        Objective("time to respond", 900.0, 12.0, "pass"),
        Objective("time to recover", 3600.0, None, "not reached"),
        Objective(HOSTILE, 60.0, 61.0, "fail"),
    )
    return Document(title=HOSTILE, kind="drill", facts={"who": HOSTILE}, items=items,
                    objectives=objectives, findings=({"text": HOSTILE, "by": "a", "at": "t"},))  # fmt: skip


def test_the_timeline_has_a_mark_per_step_target_and_objective() -> None:
    doc = document(4)
    html = render.to_html(doc)
    self_contained(html)
    tags = parse(html)
    assert len(classes(tags, "g", "step")) == 4
    targets = classes(tags, "line", "target")
    assert [t["data-step"] for t in targets] == ["1", "3"]  # the steps with a target
    assert all("verdict-fail" in (t["class"] or "") for t in targets)
    objectives = classes(tags, "line", "objective")
    assert [o["data-objective"] for o in objectives] == [
        "time to respond",
        "time to recover",
        HOSTILE,
    ]
    assert len(classes(tags, "path", "objective-actual")) == 2  # one was not reached
    # A step that took no time still shows.
    widths = [float(r["width"] or 0) for r in classes(tags, "rect", "bar")]
    assert min(widths) >= 2.0
    assert "<script>" not in html


def test_markdown_and_json_of_a_drill_document() -> None:
    doc = document(2)
    md = render.to_markdown(doc)
    assert "## Objectives" in md and "| time to recover | 60.0 min | - | not reached |" in md
    assert "## Findings" in md
    data = json.loads(render.to_json(doc))
    assert [o["status"] for o in data["objectives"]] == ["pass", "not reached", "fail"]


def test_three_hundred_steps_render_and_stay_balanced() -> None:
    html = render.to_html(document(300))
    tags = parse(html)
    assert len(classes(tags, "g", "step")) == 300
    svg = next(a for t, a in tags.seen if t == "svg")
    assert int(svg["height"] or 0) > 300 * 20
