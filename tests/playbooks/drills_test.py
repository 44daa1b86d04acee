"""The bundled drills (playbooks/drills/), one per emergency level of the
rollback manual, end to end through the real CLI on a fresh demo database:
the injects really break the copy the way the level's definition says, the
level's emergency playbook sees it in its own assessment and succeeds on the
copy, the recovery (low only) proves the constraints back, the objectives are
the manual's, the demo database itself is untouched and the copy dropped.

And the critical procedure drilled as it is scores against the manual's
15-minute response target."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from ..conftest import REPO, Project

DRILLS = REPO / "playbooks" / "drills"
H = 3600.0


def fingerprint(dsn: str) -> dict[str, Any]:
    """What a drill must not change on the database it copies: the tables the
    injects, the procedures and the recoveries write, and the constraints."""
    tables = [
        "panels", "pallets", "users", "stations", "manufacturing_orders",
        "constraint_monitoring_history", "constraint_rollback_log", "rollback_test_results",
    ]  # fmt: skip
    with psycopg.connect(dsn) as conn:
        found: dict[str, Any] = {
            t: conn.execute(
                f"SELECT count(*), md5(string_agg(x::text, '|' ORDER BY x.id)) FROM {t} x"
            ).fetchone()
            for t in tables
        }
        found["constraints"] = conn.execute(
            "SELECT string_agg(conrelid::regclass || '.' || conname || ' ' || convalidated"
            "                  || ' ' || pg_get_constraintdef(oid), E'\\n' ORDER BY conrelid::regclass::text, conname)"
            " FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
        ).fetchone()
    return found


def violations(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT constraint_name, violation_count FROM get_constraint_violations()"
        ).fetchall()
    return {str(name): int(count) for name, count in rows}


def step(run: dict[str, Any], key: str) -> dict[str, Any]:
    [found] = [s for s in run["steps"] if s["key"] == key and s["phase"] == "main"]
    return found


def rows(run: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return list(step(run, key)["result"]["rows"])


def notices(run: dict[str, Any], key: str) -> str:
    return " ".join(step(run, key)["result"]["notices"])


# What each level's injects broke, seen by the level's procedure (and by the
# injects' own last check), given the inject, procedure and recovery runs.
Seen = Callable[[dict[str, Any], dict[str, Any], dict[str, Any] | None], None]


def critical_seen(inject: dict[str, Any], procedure: dict[str, Any], _: Any) -> None:
    # Production halted: the newest panels cannot be updated (NOT VALID station_progression).
    [condition] = rows(inject, "condition")
    assert "update_probe" in condition["panels_failing"]
    assert "panels_station_progression_check" in condition["panels_failing"]
    # The procedure's assessment: a second CRITICAL constraint, station_progression with 30.
    assert rows(procedure, "system_health")[0]["critical_count"] == 2
    at_risk = {r["constraint_name"]: r for r in rows(procedure, "integrity_at_risk")}
    assert at_risk["panel_station_progression_constraints"]["overall_status"] == "🔴 CRITICAL"
    assert at_risk["panel_station_progression_constraints"]["violation_count"] == 30
    # Both priority-1 constraints dropped, and then panels work again: production restarts.
    assert {r["action"] for r in rows(procedure, "emergency_rollback")} == {"DROPPED"}
    probes = {r["test_name"]: r["test_result"] for r in rows(procedure, "functionality")}
    assert probes["update_probe"] == probes["insert_probe"] == "PASS"


def high_seen(inject: dict[str, Any], procedure: dict[str, Any], _: Any) -> None:
    assert "is stuck" in notices(inject, "stuck_probe")
    assert "panels_barcode_format_check" in notices(inject, "stuck_probe")
    [condition] = rows(inject, "condition")
    assert condition["panels_failing"] is None  # impaired, not halted
    health = {r["constraint_name"]: r for r in rows(procedure, "constraint_health")}
    assert health["panel_barcode_constraints"]["overall_status"] == "🔴 CRITICAL"
    assert health["panel_barcode_constraints"]["violation_count"] == 24
    for key in ("rollback_workflow", "rollback_barcode", "rollback_electrical"):
        assert rows(procedure, key)[0]["action"] == "DROPPED"
    # System Testing: nothing got worse since the drop (the 24 were there before).
    barcode = [
        r
        for r in rows(procedure, "data_integrity")
        if r["check_name"] == "panel_barcode_constraints"
    ]
    assert barcode == [] or not barcode[0]["worse"]


def medium_seen(inject: dict[str, Any], procedure: dict[str, Any], _: Any) -> None:
    assert "pallets_pallet_capacity_check" in notices(inject, "count_probe")
    assert step(inject, "top_up_pallets")["rowcount"] == 6
    serious = {r["constraint_name"]: r for r in rows(procedure, "serious_violations")}
    # 3 planted (MEDIUM) + 6 the injects made: WARNING, which get_constraint_violations() calls HIGH.
    assert serious["pallet_capacity_constraints"]["severity"] == "HIGH"
    assert serious["pallet_capacity_constraints"]["violation_count"] == 9
    assert rows(procedure, "rollback_panel_type_line")[0]["action"] == "DROPPED"
    assert rows(procedure, "rollback_pallet_capacity")[0]["action"] == "DROPPED"


def low_seen(inject: dict[str, Any], procedure: dict[str, Any], recovery: Any) -> None:
    assert len(step(inject, "release_migration")["result"]["notices"]) == 2
    check = {r["constraint_name"]: r for r in rows(procedure, "health_check")}
    for name in ("user_email_constraints", "station_number_constraints"):
        assert check[name]["constraint_state"] == "NOT VALID"
        assert check[name]["violation_count"] == 0
    assert not any(r["validated"] for r in rows(procedure, "capture_targets"))
    assert "(was NOT VALID)" in rows(procedure, "rollback_email_format")[0]["message"]
    # The recovery brought both back, validated.
    assert recovery is not None
    recovered = {r["constraint_name"]: r for r in rows(recovery, "recover_constraints")}
    assert set(recovered) == {"email_format", "station_number"}
    assert all(r["recovery_status"] == "PASS" and r["validated"] for r in recovered.values())


@dataclass(frozen=True)
class Level:
    severity: str  # as the scale names it (the manual's HIGH is WARNING, MEDIUM is ATTENTION)
    exercise: str
    respond: float
    mitigate: float
    recover: float
    steps: dict[str, float]  # the procedure's step name → its target, seconds
    seen: Seen
    recovery: str | None = None


LEVELS = {
    "critical": Level(
        "CRITICAL", "emergency-rollback-critical", 15 * 60, 15 * 60, H,
        {"Emergency rollback of the priority-1 constraints": 1.47}, critical_seen,
    ),
    "high": Level(
        "WARNING", "emergency-rollback-high", H, H, H,
        {
            "Roll back workflow_progression on panels": 0.85,
            "Roll back barcode_format on panels": 0.3,
            "Roll back electrical_data on panels": 0.28,
        },
        high_seen,
    ),
    "medium": Level(
        "ATTENTION", "emergency-rollback-medium", 4 * H, 4 * H, 4 * H,
        {},
        medium_seen,
    ),
    "low": Level(
        "LOW", "emergency-rollback-low", 24 * H, 24 * H, 24 * H,
        {},
        low_seen,
        recovery="emergency-rollback-incremental-recovery",
    ),
}  # fmt: skip


def test_the_injected_conditions_are_not_on_the_demo_to_begin_with(demo_db: str) -> None:
    """What each inject adds is not already there: the procedures seeing it is the inject."""
    found = violations(demo_db)
    assert "panel_station_progression_constraints" not in found  # critical adds 30
    assert "panel_barcode_constraints" not in found  # high adds 24
    assert found["pallet_capacity_constraints"] == 3  # medium adds 6 (ATTENTION -> WARNING)
    with psycopg.connect(demo_db) as conn:  # low re-adds two validated constraints NOT VALID
        assert conn.execute(
            "SELECT bool_and(convalidated) FROM pg_constraint"
            " WHERE conname IN ('users_email_format_check', 'stations_station_number_check')"
        ).fetchone() == (True,)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("level", list(LEVELS))
def test_a_bundled_drill(level: str, demo_project: Project) -> None:
    expected = LEVELS[level]
    inventory = str(demo_project.root / "inventory.yaml")
    before = fingerprint(demo_project.dsn)
    result = demo_project.run(
        "drill", "run", str(DRILLS / f"{level}-emergency-drill.yaml"), "-i", inventory,
        "--yes", "-q", "--participant", "dana:incident commander",
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    [listed] = json.loads(demo_project.run("drill", "list", "--format", "json").output)
    assert listed["playbook"] == f"{level}-emergency-drill"
    assert listed["exercise"] == expected.exercise
    assert listed["status"] == "completed"
    card = json.loads(demo_project.run("drill", "show", listed["id"], "--format", "json").output)
    facts = card["facts"]
    assert facts["status"] == "completed" and facts["reason"] is None
    assert facts["severity"] == expected.severity
    assert facts["copy"] == f"drill_{listed['id']} (template), dropped"
    assert card["participants"] == [{"name": "dana", "role": "incident commander"}]

    # The manual's targets, every one met.
    objectives = {o["name"]: o for o in card["objectives"]}
    assert {k: o["target_s"] for k, o in objectives.items()} == {
        "time to respond": expected.respond,
        "time to mitigate": expected.mitigate,
        "time to recover": expected.recover,
    }
    assert {o["status"] for o in objectives.values()} == {"pass"}
    targeted = {i["name"]: i for i in card["items"] if i["target_s"] is not None}
    assert {name: i["target_s"] for name, i in targeted.items()} == expected.steps
    assert all(i["verdict"] == "pass" for i in targeted.values())

    # The runs: injects, procedure, recovery (low only), each ok, recorded as this drill's.
    ids = dict(pair.split(" ") for pair in facts["runs"].split(", "))
    assert set(ids) == {"inject", "procedure"} | ({"recovery"} if expected.recovery else set())
    runs = {
        role: json.loads(demo_project.run("show", run_id, "--format", "json").output)
        for role, run_id in ids.items()
    }
    assert {role: r["status"] for role, r in runs.items()} == dict.fromkeys(ids, "ok")
    assert {r["mode"] for r in runs.values()} == {"drill"}
    assert runs["procedure"]["playbook"] == expected.exercise
    if expected.recovery:
        assert runs["recovery"]["playbook"] == expected.recovery
    # The injects checked their own condition (the last step's gate passed) ...
    assert step(runs["inject"], "condition")["status"] == "ok"
    # ... and the level's procedure saw it in its own assessment.
    expected.seen(runs["inject"], runs["procedure"], runs.get("recovery"))

    # The demo database itself is as it was; the copy is gone.
    assert fingerprint(demo_project.dsn) == before
    with psycopg.connect(demo_project.dsn) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s",
            (f"drill_{listed['id']}",),
        ).fetchone() == (0,)


@pytest.mark.timeout(120)
def test_the_critical_procedure_drilled_as_it_is_scores_against_15_minutes(
    demo_project: Project,
) -> None:
    path = REPO / "playbooks" / "emergency-rollback" / "critical-emergency-rollback.yaml"
    inventory = str(demo_project.root / "inventory.yaml")
    result = demo_project.run("drill", "run", str(path), "-i", inventory, "--yes", "-q")
    assert result.exit_code == 0, result.output
    assert "target 15.0m" in result.output
    [listed] = json.loads(demo_project.run("drill", "list", "--format", "json").output)
    assert listed["status"] == "completed"
    card = json.loads(demo_project.run("drill", "show", listed["id"], "--format", "json").output)
    assert card["facts"]["severity"] == "CRITICAL"
    assert card["facts"]["runs"].startswith("procedure ")  # no injects, no recovery
    respond = {o["name"]: o for o in card["objectives"]}["time to respond"]
    assert (respond["target_s"], respond["status"]) == (900.0, "pass")
    html = demo_project.run("drill", "show", listed["id"], "--format", "html").output
    assert 'data-objective="time to respond"' in html and "≤ 15m" in html
    # The scorecard files the run wrote.
    folder = demo_project.root / ".runbook" / "drills" / listed["id"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "scorecard.html", "scorecard.json", "scorecard.md",
    ]  # fmt: skip
