"""Bundled playbooks read the manuals in /work/shared/seeds/ the way the manuals read (issue 16)."""

from __future__ import annotations

from typing import Any

import psycopg

from ..conftest import REPO, Project

PLAYBOOKS = REPO / "playbooks"


def _plant(project: Project, sql: str) -> None:
    with psycopg.connect(project.dsn, autocommit=True) as conn:
        conn.execute(sql)


def _one(project: Project, sql: str) -> dict[str, Any]:
    with psycopg.connect(project.dsn, row_factory=psycopg.rows.dict_row) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return row


def _run(project: Project, playbook: str, *extra: str) -> tuple[Any, dict[str, Any]]:
    result = project.run(
        "run",
        str(PLAYBOOKS / playbook),
        "-i",
        str(project.root / "inventory.yaml"),
        "--yes",
        *extra,
    )
    return result, project.last_run()


def _step(run: dict[str, Any], key: str) -> dict[str, Any]:
    return next(s for s in run["steps"] if s["phase"] == "main" and s["key"] == key)


# --- 1. the morning check classifies what the manual classifies ----------------


def test_morning_check_calls_a_warning_system_warning(demo_project: Project) -> None:
    # The workflow rule partly corrected: the 100 COMPLETED panels without
    # station 4 get their station 4 time; 40 violations stay (WARNING: 10..49).
    # Today's CRITICAL checks are gone with the correction. What is left is the
    # state of issue 16: 0 critical, 2 warning (workflow 40, electrical 12),
    # 2 attention (pallets, MOs).
    _plant(
        demo_project,
        """
        UPDATE panels SET station_4_completed_at = station_3_completed_at + interval '5 minutes'
         WHERE status = 'COMPLETED' AND station_4_completed_at IS NULL
           AND station_3_completed_at IS NOT NULL;
        DELETE FROM constraint_monitoring_history
         WHERE health_status = 'CRITICAL' AND check_timestamp >= CURRENT_DATE;
        """,
    )
    health = _one(demo_project, "SELECT * FROM get_system_health_status()")
    assert (health["overall_status"], health["critical_count"], health["warning_count"]) == (
        "WARNING",
        0,
        2,
    ), health["summary"]
    assert health["attention_count"] == 2, health["summary"]

    result, run = _run(
        demo_project, "constraint-monitoring/morning-check.yaml", "--exit-codes", "nagios"
    )
    level = _step(run, "health_level")
    assert level["severity"] == "WARNING", level["note"]
    assert run["severity"] == "WARNING", run["reason"]
    assert result.exit_code == 1, result.output  # nagios WARNING
