"""`runbook report RUN_ID`: a real run on a real database, reported as JSON,
Markdown and HTML by the CLI, with what it paged."""

from __future__ import annotations

import json
import re

from tests.conftest import Project
from tests.runreport.htmlcheck import HOSTILE, classes, escaped, parse, self_contained

INVENTORY = """targets:
  db: {{dsn: {dsn!r}}}
default_target: db
channels:
  log: {{type: file, path: notifications.jsonl}}
policies:
  oncall:
    threshold: WARNING
    severities:
      CRITICAL:
        acknowledge_within: 15m
        levels:
          - {{name: DBA, after: 0m, notify: [log]}}
"""

PLAYBOOK = """name: report-me
kind: check
escalation: oncall
vars:
  enabled: false
steps:
  - name: count
    query: SELECT 1 AS n
  - name: wait a little
    sql: SELECT pg_sleep(0.2)
    writes: false
  - name: only when enabled
    when: enabled
    query: SELECT 3
  - name: tell the log
    notify: {{channels: [log], message: checked}}
  - name: {hostile}
    query: SELECT 2 AS m
    register: m
    gate: {{that: "m.first.m == 3", severity: CRITICAL, message: "m is 2, not 3 <b>"}}
  - name: after the gate
    query: SELECT 4
"""

STATUSES = ["ok", "ok", "skipped", "ok", "gate_failed", "not_run"]


def run(project: Project) -> str:
    project.write("inventory.yaml", INVENTORY.format(dsn=project.dsn))
    project.playbook(PLAYBOOK.format(hostile=json.dumps(HOSTILE)), "r.yaml")
    result = project.run("run", "playbooks/r.yaml")
    assert result.exit_code == 1, result.output  # the gate fails
    return str(project.last_run()["id"])


def test_a_run_reported_three_ways(project: Project) -> None:
    run_id = run(project)

    doc = json.loads(project.run("report", run_id, "--format", "json").output)
    assert doc["format"] == 1 and doc["kind"] == "run"
    assert doc["title"] == "report-me on db"
    assert doc["facts"]["run"] == run_id and doc["facts"]["exit_code"] == 1
    assert doc["facts"]["status"] == "gate_failed" and doc["facts"]["operator"].startswith(
        "tester@"
    )
    assert [i["status"] for i in doc["items"]] == STATUSES
    assert [i["number"] for i in doc["items"]] == ["1", "2", "3", "4", "5", "6"]
    assert [i["kind"] for i in doc["items"]] == [
        "query",
        "sql",
        "query",
        "notify",
        "query",
        "query",
    ]
    started = [i for i in doc["items"] if i["start_s"] is not None]
    assert [i["number"] for i in started] == ["1", "2", "4", "5"]
    assert all(i["duration_s"] is not None for i in started)
    assert doc["items"][1]["duration_s"] >= 0.2
    assert doc["items"][2]["duration_s"] is None  # skipped: it never began
    assert doc["items"][2]["reason"] == "when: enabled is false"
    assert doc["items"][4]["reason"] == "m is 2, not 3 <b>"  # JSON carries the text as it is
    starts = [i["start_s"] for i in started]
    assert starts == sorted(starts) and starts[-1] >= 0.2  # after the sleep
    assert all(i["target_s"] is None for i in doc["items"])  # a plain run has no targets
    paged = [(n["what"], n["channel"], n["state"]) for n in doc["notifications"]]
    assert paged == [
        (f"incident 1 (CRITICAL): report-me:{HOSTILE}:db", None, "open"),
        ("incident 1: trigger (level 1)", "log", "delivered"),
        ("step 4: tell the log", "log", "delivered"),
    ]

    md = project.run("report", run_id, "--format", "md").output
    rows = [line for line in md.splitlines() if re.match(r"\| \d+ \| ", line)]
    assert len(rows) == 6  # a row per step, those that never began too
    assert rows[1].startswith("| 2 | wait a little | sql | ok |")
    assert rows[2].startswith("| 3 | only when enabled | query | skipped | - | - |")
    assert "## Incidents and notifications" in md and "| step 4: tell the log | log |" in md
    escaped(md)

    out = project.root / "r.html"
    result = project.run("report", run_id[:8], "--format", "html", "--out", str(out))
    assert result.exit_code == 0 and result.output.strip() == str(out)
    html = out.read_text()
    self_contained(html)
    escaped(html)
    tags = parse(html)
    steps = classes(tags, "g", "step")
    assert [s["data-step"] for s in steps] == ["1", "2", "4", "5"]  # one per step that ran
    assert [s["data-status"] for s in steps] == ["ok", "ok", "ok", "gate_failed"]
    assert [s["data-step"] for s in classes(tags, "g", "unstarted")] == ["3", "6"]
    assert len(classes(tags, "rect", "bar")) == 4
    assert classes(tags, "line", "target") == [] and classes(tags, "line", "objective") == []


def test_markdown_is_the_default_and_stdout(project: Project) -> None:
    run_id = run(project)
    result = project.run("report", run_id)
    assert result.exit_code == 0 and result.output.startswith("# report-me on db\n")


def test_an_unknown_run_is_a_clear_error(project: Project) -> None:
    run(project)
    for fmt in ("md", "html", "json"):
        result = project.run("report", "nope", "--format", fmt)
        assert result.exit_code == 2
        assert "no run 'nope' in the journal" in result.output
        assert "Traceback" not in result.output


def test_an_unknown_format_is_refused(project: Project) -> None:
    result = project.run("report", run(project), "--format", "pdf")
    assert result.exit_code == 2 and "pdf" in result.output


def test_an_out_file_that_cannot_be_written_is_a_clear_error(project: Project) -> None:
    run_id = run(project)
    out = project.root / "no-such-folder" / "r.html"
    result = project.run("report", run_id, "--format", "html", "--out", str(out))
    assert result.exit_code == 2 and f"--out {out}: No such file or directory" in result.output
