"""`runbook demo` on a fresh project: starts the sandbox, loads the demo, fails the gate."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import REPO, Project

pytestmark = pytest.mark.slow


@pytest.fixture
def fresh_clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    monkeypatch.delenv("RUNBOOK_INVENTORY", raising=False)
    monkeypatch.delenv("RUNBOOK_JOURNAL", raising=False)
    for name in ("playbooks", "sql", "schemas"):
        os.symlink(REPO / name, tmp_path / name)
    shutil.copy(REPO / "inventory.yaml", tmp_path / "inventory.yaml")
    project = Project(tmp_path, "embedded")
    try:
        yield project
    finally:
        project.run("sandbox", "down")


def test_demo_twice(fresh_clone: Project) -> None:
    first = fresh_clone.run("demo")
    assert first.exit_code == 0, first.output
    assert "starting the sandbox PostgreSQL" in first.stderr
    assert "No CRITICAL health findings today" in first.stdout and "gate_failed" in first.stdout
    assert "panel_workflow_constraints" in first.stdout
    assert "incident 1 opened (CRITICAL" in first.stdout
    assert "notification(s) in .runbook/notifications/dba.jsonl" in first.stdout
    suggested = re.search(r"runbook run (\S+) --rehearse", first.stdout)
    assert suggested and (REPO / suggested.group(1)).is_file()
    second = fresh_clone.run("demo")
    assert second.exit_code == 0, second.output
    assert "reusing the running sandbox PostgreSQL" in second.stderr
    assert "updated (seen 2 times; not paged again)" in second.stdout
    runs = fresh_clone.runs()
    assert [r["status"] for r in runs] == ["gate_failed", "gate_failed"]
