"""Reading results (issue 15, item 16): `by()`, a gate step with several
gates, thresholds and severities taken from values, checked when rendered."""

from __future__ import annotations

from tests.conftest import Project

DASH = """name: dash
kind: check
vars:
  limits: {warn: 5, crit: 10}
steps:
  - name: Dashboard
    query: |
      SELECT * FROM (VALUES ('open_incidents', 7, 'WARNING'), ('lag_seconds', 2, 'LOW')) AS t(metric, value, level)
    register: dash
  - name: Look
    set:
      m: "{{ dash.rows | by('metric') }}"
  - name: Limits
    on_failure: continue
    gate:
      - that: m['open_incidents'].value < limits.crit
        severity: CRITICAL
        message: "{{ m['open_incidents'].value }} open incidents"
      - that: m['lag_seconds'].value < 1
        severity: "{{ m['lag_seconds'].level }}"
        message: "lag {{ m['lag_seconds'].value }} s"
  - name: Level
    classify:
      value: m['open_incidents'].value
      thresholds:
        - {above: "{{ limits.crit }}", severity: CRITICAL}
        - {above: "{{ limits.warn }}", severity: "{{ m['open_incidents'].level }}"}
      default: HEALTHY
"""


def test_by_several_gates_and_values_that_decide(project: Project) -> None:
    book = project.playbook(DASH)
    assert project.run("validate", str(book)).exit_code == 0
    result = project.run("run", str(book), "--format", "json")
    assert result.exit_code == 1, result.output
    run = project.last_run()
    limits = next(s for s in run["steps"] if s["name"] == "Limits")
    gates = {g["name"]: g for g in limits["gates"]}
    assert gates["Limits#1"]["passed"] is True
    assert gates["Limits#2"]["passed"] is False
    assert gates["Limits#2"]["severity"] == "LOW"  # taken from the row
    assert gates["Limits#2"]["message"] == "lag 2 s"
    level = next(s for s in run["steps"] if s["name"] == "Level")
    assert level["severity"] == "WARNING"  # 7 is above the templated 5, below 10


def test_a_value_that_is_no_severity_fails_with_its_place(project: Project) -> None:
    book = project.playbook(
        DASH.replace(
            "SELECT * FROM (VALUES ('open_incidents', 7, 'WARNING')",
            "SELECT * FROM (VALUES ('open_incidents', 7, 'BAD')",
        )
    )
    result = project.run("run", str(book))
    assert result.exit_code == 3, result.output
    assert "p.yaml:" in result.stdout
    assert "is 'BAD', not a severity of the scale" in result.stdout


def test_a_threshold_that_is_no_number_fails_with_its_place(project: Project) -> None:
    book = project.playbook(
        DASH.replace("limits: {warn: 5, crit: 10}", "limits: {warn: lots, crit: 10}")
    )
    result = project.run("run", str(book))
    assert result.exit_code == 3, result.output
    assert "threshold 2 above '{{ limits.warn }}' is 'lots', not a number" in result.stdout


def test_by_refuses_duplicate_keys_and_unknown_columns(project: Project) -> None:
    twice = project.playbook(
        "name: t\nkind: check\nsteps:\n  - name: Q\n    query: SELECT 1 AS k UNION ALL SELECT 1\n"
        "    register: q\n  - name: S\n    set:\n      m: \"{{ q | by('k') }}\"\n"
    )
    result = project.run("run", str(twice))
    assert result.exit_code == 3 and "1 is the key of more than one row" in result.stdout
    unknown = project.playbook(
        "name: t\nkind: check\nsteps:\n  - name: Q\n    query: SELECT 1 AS k\n"
        "    register: q\n  - name: S\n    set:\n      m: \"{{ q.rows | by('x') }}\"\n",
        "u.yaml",
    )
    result = project.run("run", str(unknown))
    assert result.exit_code == 3 and "the rows have no column 'x' (k)" in result.stdout


def test_a_literal_unknown_severity_is_still_refused_by_validate(project: Project) -> None:
    book = project.playbook(
        DASH.replace("severity: CRITICAL\n        message", "severity: CRITCAL\n        message")
    )
    result = project.run("validate", str(book))
    assert result.exit_code == 2 and "unknown severity 'CRITCAL'" in result.stdout


def test_a_templated_severity_names_only_known_values(project: Project) -> None:
    book = project.playbook(DASH.replace("{{ m['lag_seconds'].level }}", "{{ nowhere.level }}"))
    result = project.run("validate", str(book))
    assert result.exit_code == 2 and "'nowhere' is undefined" in result.stdout, result.output


def test_a_templated_equals_compares_a_number_as_a_number(project: Project) -> None:
    book = project.playbook(
        "name: eq\nkind: check\nvars:\n  expected: 7\n  label: busy\nsteps:\n"
        "  - name: Count\n    query: SELECT 7 AS n, 'busy' AS s\n    register: q\n"
        "  - name: Number\n    classify:\n      value: q.scalar\n      thresholds:\n"
        '        - {equals: "{{ expected }}", severity: WARNING}\n      default: HEALTHY\n'
        "  - name: Text\n    classify:\n      value: q.first.s\n      thresholds:\n"
        '        - {equals: "{{ label }}", severity: WARNING}\n      default: HEALTHY\n'
    )
    result = project.run("run", str(book))
    assert result.exit_code == 0, result.output
    steps = {s["name"]: s for s in project.last_run()["steps"]}
    assert steps["Number"]["severity"] == "WARNING"  # "7" rendered, compared as 7
    assert steps["Text"]["severity"] == "WARNING"  # text that is no number stays text
