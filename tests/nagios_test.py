"""`--exit-codes nagios` is a monitoring plugin: a status line with perfdata
first, UNKNOWN for whatever kept the check from running (issue 15, item 8)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from runbook import service
from tests.conftest import Project

INVENTORY = """targets:
  db: {{dsn: {dsn!r}}}
  db2: {{dsn: {dsn!r}}}
groups:
  both: [db, db2]
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
          - {{after: 0m, notify: [log]}}
"""

CHECK = """name: stock
kind: check
escalation: oncall
steps:
  - name: Count the rows
    id: rows
    query: SELECT {n} AS n
    register: rows
    gate:
      that: rows.scalar < 10
      severity: CRITICAL
      message: "{{{{ rows.scalar }}}} rows: too many"
  - name: Level
    classify:
      value: rows.scalar
      thresholds:
        - {{above: 5, severity: WARNING}}
      default: HEALTHY
  - name: Tell
    notify: {{channels: [log], message: "checked"}}
"""

# 'label'=value[UOM];[warn];[crit];[min];[max]: the plugin guidelines' perfdata.
PERF = re.compile(r"^'[^'=]+'=-?\d+(\.\d+)?(us|ms|s|%|B|KB|MB|TB|c)?(;[-\d.:~@]*){0,4}$")


@pytest.fixture
def plugin(project: Project) -> Project:
    project.write("inventory.yaml", INVENTORY.format(dsn=project.dsn))
    return project


def _status_line(output: str) -> tuple[str, list[str]]:
    first = output.splitlines()[0]
    head, _, perf = first.partition(" | ")
    return head, perf.split(" ")


def test_the_first_line_is_the_verdict_with_perfdata(plugin: Project) -> None:
    plugin.playbook(CHECK.format(n=42))
    result = plugin.run("run", "playbooks/p.yaml", "--exit-codes", "nagios", "--no-notify")
    assert result.exit_code == 2, result.output
    head, perf = _status_line(result.stdout)
    assert head == "RUNBOOK CRITICAL - stock on db: gate_failed (CRITICAL): 42 rows: too many"
    assert all(PERF.match(item) for item in perf), perf
    assert "'rows'=42" in perf
    assert "'gates_failed'=1;;0;0;1" in perf
    assert any(item.startswith("'duration'=") and "s;" in item for item in perf)
    # The steps follow, as the long output.
    assert "Count the rows" in result.stdout.splitlines()[1] + result.stdout.splitlines()[2]


def test_ok_and_classified_values(plugin: Project) -> None:
    plugin.playbook(CHECK.format(n=7))
    result = plugin.run("run", "playbooks/p.yaml", "--exit-codes", "nagios", "--no-notify")
    assert result.exit_code == 1, result.output  # the classify said WARNING
    head, perf = _status_line(result.stdout)
    assert head.startswith("RUNBOOK WARNING - stock on db: ok (WARNING)")
    assert "'rows'=7" in perf and "'Level'=7" in perf
    plugin.playbook(CHECK.format(n=1))
    result = plugin.run("run", "playbooks/p.yaml", "--exit-codes", "nagios", "--no-notify")
    assert result.exit_code == 0 and result.stdout.startswith("RUNBOOK OK - "), result.output


def test_several_targets_in_one_line(plugin: Project) -> None:
    plugin.playbook(CHECK.format(n=1))
    result = plugin.run(
        "run", "playbooks/p.yaml", "-t", "both", "--exit-codes", "nagios", "--no-notify"
    )
    head, perf = _status_line(result.stdout)
    assert head == "RUNBOOK OK - stock: 2 of 2 targets OK", result.output
    assert "'db/rows'=1" in perf and "'db2/rows'=1" in perf


def test_no_notify_opens_no_incident_and_pages_no_one(plugin: Project) -> None:
    plugin.playbook(CHECK.format(n=42))
    result = plugin.run("run", "playbooks/p.yaml", "--exit-codes", "nagios", "--no-notify")
    assert result.exit_code == 2
    assert not (plugin.root / "notifications.jsonl").exists()
    assert plugin.run("incidents").stdout.strip() == ""
    # And without it, the same run pages (the check of the check).
    paged = plugin.run("run", "playbooks/p.yaml", "--exit-codes", "nagios")
    assert paged.exit_code == 2
    assert (plugin.root / "notifications.jsonl").exists()


def test_the_notify_step_is_skipped_not_failed(plugin: Project) -> None:
    plugin.playbook(CHECK.format(n=1))
    assert plugin.run("run", "playbooks/p.yaml", "--no-notify").exit_code == 0
    tell = plugin.last_run()["steps"][-1]
    assert tell["status"] == "skipped" and "--no-notify" in tell["reason"]


@pytest.mark.parametrize(
    "args",
    [
        ["run", "playbooks/missing.yaml"],  # invalid input: exit 2 otherwise
        ["run", "playbooks/p.yaml", "-t", "nowhere"],  # an unknown target
    ],
)
def test_anything_that_kept_the_check_from_running_is_unknown(
    plugin: Project, args: list[str]
) -> None:
    plugin.playbook(CHECK.format(n=1))
    result = plugin.run(*args, "--exit-codes", "nagios")
    assert result.exit_code == 3, result.output
    assert result.stdout.startswith("RUNBOOK UNKNOWN - "), result.stdout


def test_an_unforeseen_error_is_unknown_too(
    plugin: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin.playbook(CHECK.format(n=1))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "run", broken)  # fault injection: a bug in runbook
    result = plugin.run("run", "playbooks/p.yaml", "--exit-codes", "nagios")
    assert result.exit_code == 3
    assert result.stdout.startswith("RUNBOOK UNKNOWN - internal error: RuntimeError: a bug")


def test_a_terminal_that_cannot_show_a_character_gets_an_escape(plugin: Project) -> None:
    plugin.playbook(CHECK.format(n=42).replace("Count the rows", "Count the rows ✓"))
    env = {**os.environ, "PYTHONIOENCODING": "latin-1", "RUNBOOK_OPERATOR": "tester"}
    for extra in ([], ["--exit-codes", "nagios", "--no-notify"]):
        done = subprocess.run(
            [sys.executable, "-m", "runbook.cli", "run", "playbooks/p.yaml", *extra],
            cwd=plugin.root,
            env=env,
            capture_output=True,
            timeout=120,
        )
        assert b"Traceback" not in done.stderr, done.stderr
        assert done.returncode == (2 if extra else 1), done.stdout
        assert b"\\u2713" in done.stdout  # ✓, escaped rather than a crash
