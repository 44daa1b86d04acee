"""The report document built from a run the journal recorded."""

from __future__ import annotations

import dataclasses
import json

from runbook.journal.records import RunRecord
from runbook.runreport import render
from runbook.runreport.document import Document, from_run, items_of
from tests.conftest import Project
from tests.runreport.htmlcheck import HOSTILE, escaped, parse, self_contained

PLAYBOOK = """name: three-steps
kind: change
steps:
  - name: make
    sql: CREATE TABLE t (n int)
  - name: slow
    sql: SELECT pg_sleep(0.2)
  - name: skipped
    when: "1 == 2"
    sql: SELECT 1
  - name: fill
    sql: INSERT INTO t VALUES (1), (2)
"""


def recorded(project: Project) -> RunRecord:
    project.playbook(PLAYBOOK, "c.yaml")
    assert project.run("run", "playbooks/c.yaml").exit_code == 0
    journal = project.journal()
    try:
        run = journal.run(project.last_run()["id"])
    finally:
        journal.close()
    assert run is not None
    return run


def test_from_run_puts_each_step_on_the_run_clock(project: Project) -> None:
    run = recorded(project)
    doc = from_run(run)
    assert isinstance(doc, Document) and doc.kind == "run"
    assert doc.title == "three-steps on db"
    assert [(i.number, i.name, i.kind, i.status) for i in doc.items] == [
        ("1", "make", "sql", "ok"),
        ("2", "slow", "sql", "ok"),
        ("3", "skipped", "sql", "skipped"),
        ("4", "fill", "sql", "ok"),
    ]
    make, slow, skipped, fill = doc.items
    assert make.start_s is not None and slow.start_s is not None and fill.start_s is not None
    assert 0 <= make.start_s <= slow.start_s < fill.start_s
    assert slow.duration_s is not None and slow.duration_s >= 0.2
    assert fill.start_s >= slow.start_s + 0.2
    assert not skipped.started and skipped.duration_s is None and skipped.reason
    assert doc.span_s >= fill.start_s
    assert doc.facts["exit_code"] == 0 and doc.facts["mode"] == "run"
    assert doc.facts["steps"] == "3 ok, 1 skipped"
    assert doc.notifications == ()


def test_targets_give_a_verdict_per_step(project: Project) -> None:
    run = recorded(project)
    targets = {"make": 60.0, "slow": 0.1, "skipped": 5.0}
    items = items_of(run, run.started_at, targets, "procedure")
    assert [(i.target_s, i.verdict) for i in items] == [
        (60.0, "pass"),
        (0.1, "fail"),  # 0.2 s of sleep against 0.1 s
        (5.0, "not reached"),  # never began
        (None, None),
    ]
    assert {i.run for i in items} == {"procedure"}


def test_a_hostile_playbook_and_target_are_escaped_everywhere(project: Project) -> None:
    run = dataclasses.replace(recorded(project), playbook=HOSTILE, target=HOSTILE)
    doc = from_run(run)
    html = render.to_html(doc)
    self_contained(html)
    parse(html)
    escaped(html)
    escaped(render.to_markdown(doc))
    assert json.loads(render.to_json(doc))["facts"]["playbook"] == HOSTILE  # as it is, in JSON
