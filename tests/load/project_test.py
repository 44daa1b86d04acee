"""Finding the project's inventory from a playbook or the working folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runbook.load import project


def test_nearest_inventory_above_a_playbook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNBOOK_INVENTORY", raising=False)
    (tmp_path / "inventory.yaml").write_text("targets: {}\n")
    book = tmp_path / "playbooks" / "team" / "check.yaml"
    book.parent.mkdir(parents=True)
    book.write_text("name: x\n")
    assert project.find_inventory(book) == tmp_path / "inventory.yaml"


def test_symlinked_playbooks_belong_to_the_project_they_are_linked_into(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNBOOK_INVENTORY", raising=False)
    shared, here = tmp_path / "shared", tmp_path / "here"
    (shared / "playbooks").mkdir(parents=True)
    here.mkdir()
    (shared / "inventory.yaml").write_text("targets: {}\n")
    (here / "inventory.yaml").write_text("targets: {}\n")
    (shared / "playbooks" / "check.yaml").write_text("name: x\n")
    os.symlink(shared / "playbooks", here / "playbooks")
    assert project.find_inventory(here / "playbooks" / "check.yaml") == here / "inventory.yaml"


def test_environment_names_the_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOK_INVENTORY", str(tmp_path / "elsewhere.yaml"))
    assert project.find_inventory(tmp_path) == tmp_path / "elsewhere.yaml"
