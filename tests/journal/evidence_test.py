"""`runbook journal export --run | --drill | --since` writes evidence (JSON
lines with a checkpoint signed now); `journal verify --evidence` checks a copy
offline, and catches an edited record, a dropped line and a foreign key.
Both journal backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.drill.run_test import drill as run_drill
from tests.drill.run_test import setup as drill_project

CHECK = """name: look
kind: check
steps:
  - name: one
    query: SELECT 1 AS n
"""


@pytest.fixture
def key(project: Project, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = project.root.parent / f"{project.root.name}-keys" / "journal.key"
    assert project.run("journal", "keygen", "--out", str(path)).exit_code == 0
    monkeypatch.setenv("RUNBOOK_JOURNAL_KEY_FILE", str(path))
    return path


def evidence(project: Project, *args: str) -> Path:
    result = project.run("journal", "export", *args)
    assert result.exit_code == 0, result.output
    path = project.root / "evidence.jsonl"
    path.write_text(result.stdout)
    return path


def verify(project: Project, path: Path, *extra: str) -> tuple[int, str]:
    result = project.run("journal", "verify", "--evidence", str(path), *extra)
    return result.exit_code, result.output


def test_evidence_of_runs_verifies_offline_and_catches_an_edit(project: Project, key: Path) -> None:
    project.playbook(CHECK, "look.yaml")
    ids = []
    for _ in range(3):
        assert project.run("run", "playbooks/look.yaml").exit_code == 0
        ids.append(project.last_run()["id"])
    path = evidence(project, "--run", ids[1])
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "runbook-evidence/1" and header["checkpoint"]["signature"]
    assert header["selected"]["runs"] == [ids[1]]
    whole = [json.loads(x) for x in lines[1:] if "payload" in json.loads(x)]
    assert whole and all(e["run_id"] == ids[1] for e in whole if e.get("run_id"))
    code, said = verify(project, path, "--public-key", str(key) + ".pub")
    assert code == 0, said
    # An edited record no longer chains to the signed head.
    edited = path.read_text().replace('"status": "ok"', '"status": "failed"', 1)
    assert edited != path.read_text()
    path.write_text(edited)
    code, said = verify(project, path)
    assert code == 1 and "damaged" in said


def test_evidence_since_takes_every_ended_run_and_a_dropped_line_is_caught(
    project: Project, key: Path
) -> None:
    project.playbook(CHECK, "look.yaml")
    for _ in range(2):
        assert project.run("run", "playbooks/look.yaml").exit_code == 0
    path = evidence(project, "--since", "1d")
    assert len(json.loads(path.read_text().splitlines()[0])["selected"]["runs"]) == 2
    assert verify(project, path)[0] == 0
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:3] + lines[4:]) + "\n")
    assert verify(project, path)[0] == 1


def test_evidence_of_a_drill_holds_its_runs_and_its_records(project: Project, key: Path) -> None:
    drill_project(project)
    assert run_drill(project, "-q").exit_code == 0
    [record] = json.loads(project.run("drill", "list", "--format", "json").output)
    path = evidence(project, "--drill", record["id"])
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines[0]["selected"]["runs"]) == 3
    tables = {e["payload"]["table"] for e in lines[1:] if "payload" in e}
    assert "drills" in tables
    code, said = verify(project, path)
    assert code == 0, said
    assert "key id" in said  # checked with the key the file carries: it says so


def test_evidence_needs_a_signing_key(project: Project) -> None:
    project.playbook(CHECK, "look.yaml")
    assert project.run("run", "playbooks/look.yaml").exit_code == 0
    result = project.run("journal", "export", "--since", "1d")
    assert result.exit_code == 2 and "key" in result.output
