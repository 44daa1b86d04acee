"""`max_rows` on a step: how many rows the terminal and --format json show; the
journal keeps at most the inventory's row_sample (issue 15, item 10)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from .conftest import INVENTORY, Project

BOOK = """name: rows
kind: check
steps:
  - name: Twenty-five of thirty
    query: SELECT g AS n, 'a' || g AS label FROM generate_series(1, 30) g
    max_rows: 25
    register: many
    gate: {that: "many.rowcount == 30 and many.rows | length == 30 and many.rows[29].n == 30"}
  - name: Three of thirty
    query: SELECT g AS n, 'b' || g AS label FROM generate_series(1, 30) g
    max_rows: 3
  - name: The default
    query: SELECT g AS n, 'c' || g AS label FROM generate_series(1, 30) g
  - name: Fewer rows than max_rows
    query: SELECT g AS n, 'd' || g AS label FROM generate_series(1, 4) g
    max_rows: 10
"""


def _shown(output: str, letter: str) -> list[int]:
    """The row numbers a plain table shows for the step whose labels start with `letter`."""
    return [int(m.group(1)) for m in re.finditer(rf"^ +(\d+) +{letter}\1$", output, re.M)]


def _results(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s["result"] for s in steps]


def test_max_rows_limits_the_terminal_and_says_how_many_more(project: Project) -> None:
    result = project.run("run", str(project.playbook(BOOK)))
    assert result.exit_code == 0, result.output
    out = result.output
    assert _shown(out, "a") == list(range(1, 26))
    assert _shown(out, "b") == [1, 2, 3]
    assert _shown(out, "c") == list(range(1, 11))  # the terminal's own default
    assert _shown(out, "d") == [1, 2, 3, 4]
    more = [line.strip() for line in out.splitlines() if "more row" in line]
    assert more == ["(5 more row(s))", "(27 more row(s))", "(20 more row(s))"]


def test_max_rows_limits_json_and_the_journal_keeps_row_sample(project: Project) -> None:
    result = project.run("run", str(project.playbook(BOOK)), "--format", "json")
    assert result.exit_code == 0, result.output
    shown = _results(json.loads(result.stdout)["runs"][0]["steps"])
    assert [len(r["rows"]) for r in shown] == [25, 3, 20, 4]  # the default: row_sample
    assert [r["rows_total"] for r in shown] == [30, 30, 30, 4]
    assert [r["truncated"] for r in shown] == [True, True, True, False]
    assert shown[0]["rows"][-1] == {"n": 25, "label": "a25"}
    kept = _results(project.last_run()["steps"])
    assert [len(r["rows"]) for r in kept] == [20, 3, 20, 4]  # never more than row_sample
    assert [r["truncated"] for r in kept] == [True, True, True, False]


def test_a_smaller_row_sample_bounds_the_journal_not_what_is_shown(project: Project) -> None:
    project.write(
        "inventory.yaml", INVENTORY.format(dsn=project.dsn) + "journal: {row_sample: 2}\n"
    )
    result = project.run("run", str(project.playbook(BOOK)), "--format", "json")
    assert result.exit_code == 0, result.output
    shown = _results(json.loads(result.stdout)["runs"][0]["steps"])
    assert [len(r["rows"]) for r in shown] == [25, 3, 2, 4]
    kept = _results(project.last_run()["steps"])
    assert [len(r["rows"]) for r in kept] == [2, 2, 2, 2]
    # A registered result cut in the journal is kept whole for resume.
    assert len(project.last_run()["steps"][0]["registered"]["rows"]) == 30


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "0 is less than the minimum of 1"),
        ("-5", "-5 is less than the minimum of 1"),
        ("10001", "10001 is more than the maximum of 10000"),
        ("ten", "expected an integer, got the string 'ten'"),
        ("2.5", "expected an integer, got 2.5"),
    ],
)
def test_max_rows_must_be_a_positive_bounded_integer(
    project: Project, value: str, message: str
) -> None:
    book = project.playbook(
        f"name: m\nkind: check\nsteps:\n  - name: Q\n    query: SELECT 1\n    max_rows: {value}\n"
    )
    result = project.run("validate", str(book))
    assert result.exit_code == 2
    assert f"playbooks/p.yaml:6:15: $.steps[0].max_rows: {message}" in result.output
