"""The bundled playbooks' project: the repository's inventory on a fresh demo database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ..conftest import REPO, Project


@pytest.fixture
def demo_project(tmp_path: Path, demo_db: str, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The repository's inventory with `sandbox` on a fresh demo database."""
    monkeypatch.delenv("RUNBOOK_INVENTORY", raising=False)
    monkeypatch.delenv("RUNBOOK_JOURNAL", raising=False)
    monkeypatch.setenv("RUNBOOK_OPERATOR", "tester")
    text = (REPO / "inventory.yaml").read_text().replace("dsn: embedded", f"dsn: {demo_db!r}", 1)
    (tmp_path / "inventory.yaml").write_text(text)
    os.symlink(REPO / "sql", tmp_path / "sql")
    return Project(tmp_path, demo_db)
