"""A project folder for the schedule's tests: an inventory whose targets are
never connected to (nothing here runs a playbook)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

INVENTORY = """targets:
  db: {dsn: "host=/nonexistent dbname=x"}
  replica: {dsn: "host=/nonexistent dbname=y"}
groups:
  both: [db, replica]
default_target: db
"""


@dataclass
class Folder:
    root: Path

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def playbook(self, name: str, schedule: str, extra: str = "") -> Path:
        """A check playbook with this `schedule:` text (YAML, after the key)."""
        return self.write(
            f"playbooks/{name}.yaml",
            f"name: {name}\nkind: check\nschedule: {schedule}\n{extra}"
            "steps:\n  - name: a\n    query: SELECT 1\n",
        )

    def run(self, *args: str) -> Any:
        """The real CLI, in-process, from the project's folder."""
        from click.testing import CliRunner

        from runbook.cli import main

        old = Path.cwd()
        os.chdir(self.root)
        try:
            return CliRunner().invoke(main, list(args), catch_exceptions=False)
        finally:
            os.chdir(old)


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Folder:
    monkeypatch.delenv("RUNBOOK_INVENTORY", raising=False)
    monkeypatch.delenv("RUNBOOK_NOW", raising=False)
    f = Folder(tmp_path)
    f.write("inventory.yaml", INVENTORY)
    return f
