"""Remembered check passes: skipped only while every file the checks read is unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook import checks, loader
from runbook.commands.run import load_inventory

from .conftest import Project

MAIN = """name: main
kind: check
vars: {limit: 3}
steps:
  - name: Count
    query: SELECT {{ limit }}::int AS n
    register: c
    gate: {that: c.scalar == 3}
  - name: From a file
    sql_file: count.sql
    writes: false
  - name: The shared part
    include: shared.yaml
"""
SHARED = """name: shared
kind: check
steps:
  - name: Shared query
    query: SELECT 1 AS one
"""


def make(project: Project) -> Path:
    project.write("sql/count.sql", "SELECT {{ limit }}::int AS n\n")
    project.playbook(SHARED, "shared.yaml")
    return project.playbook(MAIN, "main.yaml")


def passed(project: Project, playbook: Path) -> bool:
    inventory = load_inventory(project.root / "inventory.yaml", playbook)
    ctx = checks.Context(inventory, inventory.root)
    pb, _ = ctx.load(playbook)
    assert pb is not None
    return checks.passed(ctx, pb)


def test_a_run_remembers_its_pass_and_the_next_run_of_the_same_files_uses_it(
    project: Project,
) -> None:
    playbook = make(project)
    assert not passed(project, playbook)
    first = project.run("run", str(playbook))
    assert first.exit_code == 0, first.output
    assert list((project.root / ".runbook" / "cache" / "checks").glob("*.json"))
    assert passed(project, playbook)
    second = project.run("run", str(playbook))
    assert second.exit_code == 0, second.output
    assert [s["status"] for s in project.last_run()["steps"]] == ["ok", "ok", "ok", "ok"]


def test_a_changed_include_is_checked_again(project: Project) -> None:
    playbook = make(project)
    assert project.run("run", str(playbook)).exit_code == 0
    project.playbook(
        SHARED.replace("SELECT 1 AS one", "SELECT {{ nowhere }} AS one"), "shared.yaml"
    )
    assert not passed(project, playbook)
    result = project.run("run", str(playbook))
    assert result.exit_code == 2, result.output
    assert "'nowhere' is undefined" in result.output


def test_a_changed_or_missing_sql_file_is_checked_again(project: Project) -> None:
    playbook = make(project)
    assert project.run("run", str(playbook)).exit_code == 0
    project.write("sql/count.sql", "SELECT {{ nowhere }}::int AS n\n")
    result = project.run("run", str(playbook))
    assert result.exit_code == 2, result.output
    assert "'nowhere' is undefined" in result.output
    (project.root / "sql" / "count.sql").unlink()
    result = project.run("run", str(playbook))
    assert result.exit_code == 2, result.output
    assert "count.sql" in result.output


def test_a_changed_inventory_or_playbook_is_another_key(project: Project) -> None:
    playbook = make(project)
    assert project.run("run", str(playbook)).exit_code == 0
    inventory = project.root / "inventory.yaml"
    inventory.write_text(inventory.read_text() + "\n# edited\n")
    assert not passed(project, playbook)
    assert project.run("run", str(playbook)).exit_code == 0
    playbook.write_text(MAIN.replace("c.scalar == 3", "c.scalar == undefined_name"))
    result = project.run("run", str(playbook))
    assert result.exit_code == 2, result.output
    assert "'undefined_name' is undefined" in result.output


def test_a_damaged_entry_means_checking_again(project: Project) -> None:
    playbook = make(project)
    assert project.run("run", str(playbook)).exit_code == 0
    for entry in (project.root / ".runbook" / "cache" / "checks").glob("*.json"):
        entry.write_text("{not json")
    assert not passed(project, playbook)
    for entry in (project.root / ".runbook" / "cache" / "checks").glob("*.json"):
        entry.write_text('{"includes": {}, "sql_files": []}')
    assert not passed(project, playbook)
    assert project.run("run", str(playbook)).exit_code == 0
    assert passed(project, playbook)


def test_only_passes_are_remembered(project: Project) -> None:
    playbook = project.playbook(MAIN.replace("{{ limit }}::int", "{{ nowhere }}::int"), "bad.yaml")
    make(project)
    for _ in range(2):
        result = project.run("run", str(playbook))
        assert result.exit_code == 2
        assert "'nowhere' is undefined" in result.output
    assert not list((project.root / ".runbook" / "cache" / "checks").glob("*.json"))
    assert loader.cache_dir(project.root).is_dir()  # the documents themselves are cached


def test_other_code_is_another_key(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """A check added to a working copy (same version number) is not skipped."""
    from runbook.checks import remembered

    playbook = make(project)
    assert project.run("run", str(playbook)).exit_code == 0
    assert passed(project, playbook)
    monkeypatch.setattr(remembered, "_code", lambda: "a changed runbook")
    assert not passed(project, playbook)


def test_a_remembered_run_starts_with_its_templates_compiled(project: Project) -> None:
    from runbook import sqlprogram, tmplfast

    playbook = make(project)
    first = project.run("run", str(playbook))
    assert first.exit_code == 0, first.output
    # As a new process would be: nothing compiled yet.
    sqlprogram.PROGRAMS.clear()
    tmplfast._EXPRESSIONS.clear()
    assert passed(project, playbook)
    assert "SELECT {{ limit }}::int AS n" in sqlprogram.PROGRAMS  # main's query, compiled before
    assert "c.scalar == 3" in tmplfast._EXPRESSIONS  # and its gate
    second = project.run("run", str(playbook))
    assert second.exit_code == 0, second.output
    rendered = [s["rendered"] for s in project.runs()[0]["steps"]]
    assert [s["rendered"] for s in project.last_run()["steps"]] == rendered


def test_damaged_compiled_templates_in_an_entry_are_compiled_again(project: Project) -> None:
    import json

    from runbook import sqlprogram

    playbook = make(project)
    assert project.run("run", str(playbook)).exit_code == 0
    for entry in (project.root / ".runbook" / "cache" / "checks").glob("*.json"):
        data = json.loads(entry.read_text())
        data["programs"] = {source: {"outputs": "nonsense"} for source in data["programs"]}
        entry.write_text(json.dumps(data))
    sqlprogram.PROGRAMS.clear()
    assert passed(project, playbook)  # the checks' pass still stands
    assert not sqlprogram.PROGRAMS
    result = project.run("run", str(playbook))
    assert result.exit_code == 0, result.output
    assert project.last_run()["steps"][0]["rendered"] == "SELECT $1::int AS n"
