"""Looking before running, as ansible-playbook users expect: --list-steps,
--start-at-step, --step, -v (issue 15, item 18)."""

from __future__ import annotations

import pytest

from tests.conftest import Project
from tests.terminal import Terminal

BOOK = """name: tidy
kind: change
vars:
  who: {from_env: TIDY_WHO}
secrets: [who]
steps:
  - name: Count
    id: count
    query: SELECT 3 AS n
    register: c
    tags: [daily]
  - name: Make
    sql: CREATE TABLE IF NOT EXISTS tidy_t (n int, who text)
    rollback:
      - name: Unmake
        sql: DROP TABLE tidy_t
  - name: Fill
    sql: INSERT INTO tidy_t VALUES ({{ c.scalar }}, {{ who }})
  - name: Both
    transaction:
      - name: Inner
        sql: UPDATE tidy_t SET n = n + 1
"""


@pytest.fixture
def tidy(project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("TIDY_WHO", "s3cret-person")
    project.playbook(BOOK)
    return project


def test_list_steps_shows_the_plan_and_runs_nothing(tidy: Project) -> None:
    result = tidy.run("run", "playbooks/p.yaml", "--list-steps")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "tidy (change) on db: 5 step(s)"
    assert "Count" in lines[1] and "tags: daily" in lines[1] and lines[1].rstrip().endswith("reads")
    assert "writes; rollback: 2.r1" in lines[2]
    assert "transaction" in lines[4] and "3.1" not in result.stdout and "4.1" in lines[5]
    assert tidy.runs() == []  # nothing ran, nothing was journaled
    tagged = tidy.run("run", "playbooks/p.yaml", "--list-steps", "--tags", "daily")
    assert "[skipped: not selected by --tags / --skip-tags]" in tagged.stdout


def test_start_at_step_needs_what_the_skipped_steps_register(tidy: Project) -> None:
    refused = tidy.run("run", "playbooks/p.yaml", "--start-at-step", "Fill")
    assert refused.exit_code == 2, refused.output
    assert "'c' (registered by 'Count')" in refused.output
    assert "-e c=" in refused.output and "runbook resume" in refused.output
    assert tidy.runs() == []
    # By number too, and a step after the skipped one's user still needs it.
    by_number = tidy.run("run", "playbooks/p.yaml", "--start-at-step", "2")
    assert by_number.exit_code == 2 and "registered by 'Count'" in by_number.output


def test_start_at_step_with_the_value_given(tidy: Project) -> None:
    result = tidy.run(
        "run", "playbooks/p.yaml", "--start-at-step", "Make", "-e", '{"c": {"scalar": 9}}'
    )
    assert result.exit_code == 0, result.output
    steps = tidy.last_run()["steps"]
    assert steps[0]["status"] == "skipped"
    assert steps[0]["reason"] == "before the step --start-at-step begins at"
    assert [s["status"] for s in steps[1:]] == ["ok", "ok", "ok", "ok"]
    assert tidy.last_run()["selection"]["start_at"] == "Make"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Fil", "no such step in tidy (did you mean 'Fill'?)"),
        ("Inner", "inside a transaction"),
    ],
)
def test_start_at_step_names_a_top_level_step(tidy: Project, name: str, message: str) -> None:
    result = tidy.run("run", "playbooks/p.yaml", "--start-at-step", name)
    assert result.exit_code == 2 and message in result.output, result.output


def test_verbose_shows_the_sql_and_its_bound_values_secrets_masked(tidy: Project) -> None:
    result = tidy.run("run", "playbooks/p.yaml", "-v")
    assert result.exit_code == 0, result.output
    assert "INSERT INTO tidy_t VALUES ($1, $2)" in result.stdout
    assert "with: $1 = 3, $2 = '***'" in result.stdout
    assert "s3cret-person" not in result.stdout


def test_step_needs_a_terminal(tidy: Project) -> None:
    result = tidy.run("run", "playbooks/p.yaml", "--step")
    assert result.exit_code == 2 and "needs a terminal" in result.output


@pytest.mark.timeout(240)  # above Terminal.wait's 90 s: a hang shows its stacks
def test_step_asks_before_each_step(tidy: Project) -> None:
    term = Terminal(["run", "playbooks/p.yaml", "--step"], tidy.root, {"RUNBOOK_OPERATOR": "alice"})
    term.expect(r"step 1 'Count' \(query\): run it\? \[y/n/c\]: ")
    term.type("y")
    term.expect(r"step 2 'Make' \(sql\): run it\? \[y/n/c\]: ")
    term.type("n")
    term.expect(r"step 3 'Fill' \(sql\): run it\? \[y/n/c\]: ")
    term.type("c")  # this one and the rest, without asking
    assert term.wait() == 3, term.text  # Fill needs the table Make would have made
    statuses = [s["status"] for s in tidy.last_run()["steps"]]
    assert statuses[:3] == ["ok", "skipped", "failed"]
    assert "skipped by the operator (--step)" in tidy.last_run()["steps"][1]["reason"]
