"""Every bundled playbook, end to end, against a fresh copy of the demo database.

tests/playbooks/expected/<system>.yaml say, per playbook, the exit code and which steps'
gates fail on which planted faults; a playbook without an entry fails the suite.
Each runs through the real CLI with the repository's inventory, its `sandbox`
target pointed at the copy, and `--yes` for the steps a person confirms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import REPO, Project, client_programs_of, server_major

PLAYBOOKS = REPO / "playbooks"
EXPECTED: dict[str, dict[str, Any]] = {}
for _file in sorted((Path(__file__).parent / "expected").glob("*.yaml")):
    EXPECTED.update(
        {f"{_file.stem}/{k}": v for k, v in (yaml.safe_load(_file.read_text()) or {}).items()}
    )


def _bundled() -> list[str]:
    """Every bundled playbook `runbook run` runs (drills run with `drill run`: drills_test.py)."""
    return sorted(
        str(p.relative_to(PLAYBOOKS))
        for p in PLAYBOOKS.rglob("*.yaml")
        if p.parent.name != "drills"
    )


def test_every_playbook_has_an_expectation() -> None:
    assert _bundled(), "no bundled playbooks"
    assert sorted(EXPECTED) == _bundled()


_RESTORES = {"hist-data-ingestor/restore-drill.yaml", "hist-data-ingestor/monthly-checklist.yaml"}


@pytest.mark.parametrize("name", _bundled())
def test_bundled_playbook(name: str, demo_project: Project) -> None:
    expected = EXPECTED[name]
    if name in _RESTORES and not client_programs_of(server_major(demo_project.dsn)):
        # The restore then refuses the dump, with the reason (restore_version_test.py).
        pytest.skip("the restore needs pg_dump of the server's major, not on this machine")
    args = ["run", str(PLAYBOOKS / name), "-i", str(demo_project.root / "inventory.yaml"), "--yes"]
    for item in expected.get("extra", []):
        args += ["-e", item]
    result = demo_project.run(*args)
    run = demo_project.last_run()
    steps = [s for s in run["steps"] if s["phase"] == "main"]
    gate_failed = sorted(s["key"] for s in steps if s["status"] == "gate_failed")
    failed = sorted(s["key"] for s in steps if s["status"] == "failed")
    detail = "\n".join(
        f"  {s['number']} {s['status']}: {s['name']} {s['error'] or s['reason'] or ''}"
        for s in steps
    )
    assert result.exit_code == expected["exit"], (
        f"{name}: exit {result.exit_code}\n{detail}\n{result.output}"
    )
    assert gate_failed == sorted(expected.get("gate_failed", [])), detail
    assert failed == sorted(expected.get("failed", [])), detail
    if "status" in expected:
        assert run["status"] == expected["status"], detail
