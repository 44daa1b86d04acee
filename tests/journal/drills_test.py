"""The drills' table read back, on both backends: filters in the query,
before its LIMIT, so that a drill behind many newer ones is still found."""

from __future__ import annotations

from typing import Any

from runbook.journal.store import JournalStore

from .schedule_test import _insert, config, store

__all__ = ["config", "store"]  # the fixtures, shared with the schedule tests


def _drill(i: int, status: str, playbook: str = "fix-orders") -> dict[str, Any]:
    return {
        "id": f"d{i:05d}", "playbook": playbook, "playbook_path": f"playbooks/{playbook}.yaml",
        "exercise": "fix-orders", "target": "db", "copy_db": f"copy_{i}",
        "copy_method": "template", "operator": "tester", "os_user": "tester", "host": "h",
        "pid": 1, "pid_started": 1.0, "participants": None,
        "started_at": f"2026-11-{1 + i // 1440:02d}T{i // 60 % 24:02d}:{i % 60:02d}:00.000Z",
        "inject_at": None, "ended_at": None, "status": status, "run_ids": None,
        "objective_results": None, "rpo_s": None, "kept": 1, "reason": None,
    }  # fmt: skip


def test_drills_by_status_and_name_are_found_behind_hundreds_of_newer_ones(
    store: JournalStore,
) -> None:
    old = [_drill(0, "running", "dead-one"), _drill(1, "copying")]
    newer = [_drill(i, "completed") for i in range(2, 302)]
    store.append([_insert("drills", row) for row in [*old, *newer]])
    going = store.drills(statuses=("copying", "running"), limit=None)
    assert [d.id for d in going] == ["d00001", "d00000"]
    assert [d.id for d in store.drills(named="dead-one")] == ["d00000"]
    assert [d.id for d in store.drills(named="playbooks/dead-one.yaml")] == ["d00000"]
    assert len(store.drills(named="fix-orders", limit=None)) == 302  # the procedure's name
    assert len(store.drills(limit=None)) == 302 and len(store.drills()) == 50
    assert store.drills(statuses=("failed",)) == []
