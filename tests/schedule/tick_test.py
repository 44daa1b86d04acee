"""`runbook scheduler tick --now …` end to end: real runs on a real database,
the fire ledger in the journal (both backends), incidents when a routine did
not run, pauses, refusals."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.conftest import Project

INVENTORY = """targets:
  db:
    dsn: {dsn!r}
{protected}default_target: db
scheduler: {{timezone: Europe/Berlin}}
channels:
  log: {{type: file, path: notifications.jsonl}}
policies:
  oncall:
    severities:
      CRITICAL:
        levels:
          - {{after: 0m, notify: [log]}}
"""

DAILY = """name: morning
kind: check
escalation: oncall
schedule: "0 8 * * *"
steps:
  - name: look
    query: SELECT 1 AS n
"""


@pytest.fixture
def routine(project: Project) -> Project:
    project.write("inventory.yaml", INVENTORY.format(dsn=project.dsn, protected=""))
    project.playbook(DAILY, "morning.yaml")
    return project


def tick(project: Project, now: str) -> list[str]:
    result = project.run("scheduler", "tick", "--now", now)
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def fires(project: Project) -> list[dict[str, object]]:
    result = project.run("history", "--fires", "--format", "json", "--limit", "1000")
    assert result.exit_code == 0, result.output
    return list(reversed(json.loads(result.output)))


def notifications(project: Project) -> list[dict[str, object]]:
    path = project.root / "notifications.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_due_slot_runs_once_as_a_scheduled_run_that_names_its_slot(routine: Project) -> None:
    # 08:00 in Berlin is 07:00Z in December.
    lines = tick(routine, "2026-12-04T07:00:00.300Z")
    assert any("started run" in line and "morning on db" in line for line in lines), lines
    again = tick(routine, "2026-12-04T07:00:30Z")  # a second tick (or scheduler): nothing new
    assert not any("started run" in line for line in again)
    [fire] = fires(routine)
    assert (fire["status"], fire["slot"], fire["run_status"]) == (
        "started",
        "2026-12-04T07:00:00.000Z",
        "ok",
    )
    [run] = routine.runs()
    assert run["id"] == fire["run_id"]
    assert run["mode"] == "scheduled" and run["status"] == "ok"
    assert run["operator"].startswith("scheduler@")
    assert run["selection"]["fire"]["slot"] == "2026-12-04T07:00:00.000Z"
    shown = routine.run("show", str(run["id"])).output
    assert "fired by the schedule cron:0 8 * * * for its slot 2026-12-04T08:00:00+01:00" in shown
    listed = json.loads(routine.run("schedule", "list", "--format", "json").output)
    assert (listed[0]["last_result"], listed[0]["last_run_id"]) == ("ok", run["id"])
    assert listed[0]["flags"] == []
    history = routine.run("history").output
    assert str(run["id"]) in history and "scheduled" in history


def test_a_missed_routine_opens_an_incident_and_resolves_when_it_next_runs(
    routine: Project,
) -> None:
    tick(routine, "2026-12-01T07:00:01Z")  # ran on the 1st
    # The scheduler was down from the 2nd to the 4th, back at 10:00 Berlin: past the deadline.
    lines = tick(routine, "2026-12-04T09:00:00Z")
    assert any("did not run" in line for line in lines), lines
    missed = [f for f in fires(routine) if f["status"] == "missed"]
    assert [(f["slot"], f["slot_last"], f["count"]) for f in missed] == [
        ("2026-12-02T07:00:00.000Z", "2026-12-04T07:00:00.000Z", 3)
    ]
    incidents = json.loads(routine.run("incidents", "--format", "json").output)
    [incident] = incidents
    assert incident["status"] == "open" and "did not run on db" in incident["message"]
    [paged] = notifications(routine)
    assert paged["event"] == "trigger" and "did not run on db" in json.dumps(paged)
    # Next morning it runs on time: the incident resolves by itself.
    tick(routine, "2026-12-05T07:00:00.500Z")
    [incident] = json.loads(routine.run("incidents", "--format", "json").output)
    assert incident["status"] == "resolved"


def test_overdue_shows_in_the_list_when_no_scheduler_recorded_a_slot(
    routine: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    tick(routine, "2026-12-01T07:00:01Z")
    monkeypatch.setenv("RUNBOOK_NOW", "2026-12-01T09:00:00Z")
    [row] = json.loads(routine.run("schedule", "list", "--format", "json").output)
    assert row["flags"] == []  # the 1st's slot was recorded
    monkeypatch.setenv("RUNBOOK_NOW", "2026-12-02T09:00:00Z")  # the 2nd's was not: 1h past
    [row] = json.loads(routine.run("schedule", "list", "--format", "json").output)
    assert row["flags"] == ["overdue"]
    assert row["last_fire"] == "2026-12-01T07:00:00.000Z"


def test_disabled_slots_are_recorded_as_paused_and_nobody_is_paged(routine: Project) -> None:
    tick(routine, "2026-12-01T07:00:01Z")
    result = routine.run("schedule", "disable", "morning", "--reason", "maintenance week")
    assert result.exit_code == 0, result.output
    assert "disabled on all its targets (db) by tester: maintenance week" in result.output
    assert not any("started" in line for line in tick(routine, "2026-12-02T07:00:01Z"))
    listed = json.loads(routine.run("schedule", "list", "--format", "json").output)
    assert listed[0]["flags"] == ["paused"]
    routine.run("schedule", "enable", "morning", "--reason", "done")
    # (enabled now, in real time: every slot up to now is paused, the next runs)
    assert (
        routine.run("schedule", "disable", "morning", "-t", "nope", "--reason", "x").exit_code == 2
    )


def test_a_protected_target_without_a_standing_authorization_is_refused_and_paged(
    project: Project,
) -> None:
    project.write(
        "inventory.yaml", INVENTORY.format(dsn=project.dsn, protected="    protected: true\n")
    )
    project.playbook(
        DAILY.replace("kind: check", "kind: change").replace(
            "query: SELECT 1 AS n", "sql: CREATE TABLE scheduled_t (n int)"
        ),
        "morning.yaml",
    )
    lines = tick(project, "2026-12-04T07:00:00.300Z")
    [fire] = fires(project)
    assert fire["status"] == "refused", lines
    assert "standing authorization" in str(fire["reason"])
    with psycopg.connect(project.dsn) as conn:
        assert conn.execute("SELECT to_regclass('scheduled_t')").fetchone() == (None,)
    [incident] = json.loads(project.run("incidents", "--format", "json").output)
    assert "did not run" in incident["message"]
    # Authorized, the next slot runs.
    granted = project.run("authorize", "playbooks/morning.yaml", "-t", "db", "--reason", "ok")
    assert granted.exit_code == 0, granted.output
    tick(project, "2026-12-05T07:00:00.300Z")
    assert [f["status"] for f in fires(project)] == ["refused", "started"]
    assert fires(project)[-1]["run_status"] == "ok"


def test_the_ledger_is_verified_with_the_journal(routine: Project) -> None:
    tick(routine, "2026-12-04T07:00:00.300Z")
    result = routine.run("journal", "verify")
    assert result.exit_code == 0, result.output


def test_a_running_scheduler_reads_edited_playbooks_and_keeps_its_schedules_on_a_broken_one(
    routine: Project,
) -> None:
    import os

    from runbook.clock import FixedClock, parse_iso
    from runbook.schedule.launch import Launched
    from runbook.schedule.tick import Scheduler

    def launch(spec: object, delay: float) -> Launched:
        raise AssertionError("nothing is due")

    clock = FixedClock(parse_iso("2026-12-04T12:00:00Z"))
    scheduler = Scheduler(routine.root / "inventory.yaml", clock, launch, near=routine.root)
    try:
        assert [e.playbook.name for e in scheduler.entries] == ["morning"]
        assert scheduler.reload() == []  # nothing changed
        routine.playbook(DAILY.replace("morning", "evening").replace("0 8", "0 18"), "evening.yaml")
        [line] = scheduler.reload()
        assert "1 new, 0 gone" in line
        assert sorted(e.playbook.name for e in scheduler.entries) == ["evening", "morning"]
        broken = routine.playbook("name: evening\nkind: check\nschedule: [\n", "evening.yaml")
        os.utime(broken, ns=(1, 1))  # a different mtime even within the clock's resolution
        [line] = scheduler.reload()
        assert "do not load" in line and "stay as they were" in line
        assert sorted(e.playbook.name for e in scheduler.entries) == ["evening", "morning"]
        broken.unlink()
        [line] = scheduler.reload()
        assert "0 new, 1 gone" in line
    finally:
        scheduler.close()


def test_history_fires_finds_a_playbooks_fires_behind_hundreds_of_newer_ones(
    routine: Project,
) -> None:
    tick(routine, "2026-11-23T07:05:00Z")  # 08:05 in Berlin: the morning slot runs
    journal = routine.journal()
    try:
        # Another routine's 200 fires, all of a later day.
        journal.append(
            [
                (
                    "2026-11-24T10:00:00.000Z",
                    None,
                    "fires.insert",
                    {
                        "table": "fires",
                        "op": "insert",
                        "row": {
                            "id": f"playbooks/often.yaml|often|db|{i}",
                            "playbook": "often",
                            "playbook_path": "playbooks/often.yaml",
                            "schedule": "often",
                            "target": "db",
                            "slot": f"2026-11-24T{i // 60:02d}:{i % 60:02d}:00.000Z",
                            "count": 1,
                            "status": "skipped",
                            "reason": "overlap",
                            "claimed_at": "2026-11-24T10:00:00.000Z",
                        },
                    },
                )
                for i in range(200)
            ]
        )
    finally:
        journal.close()
    for playbook in ("morning", "playbooks/morning.yaml"):
        result = routine.run("history", "--fires", "--playbook", playbook, "--limit", "10")
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert len(lines) == 1 and "morning" in lines[0] and "started" in lines[0], lines
    shown = routine.run("history", "--fires", "--format", "json", "--limit", "1000")
    assert len(json.loads(shown.output)) == 201
    # --since counts back from now (the real clock): slots of the last hour, none of 2026-11.
    recent = routine.run("history", "--fires", "--since", "1h", "--format", "json")
    assert recent.exit_code == 0 and json.loads(recent.output) == []


def _fire_event(row: dict[str, object]) -> tuple[str, None, str, dict[str, object]]:
    return (
        "2026-11-24T10:00:00.000Z",
        None,
        "fires.insert",
        {"table": "fires", "op": "insert", "row": row},
    )


def test_an_orphaned_fire_is_settled_however_many_settled_fires_are_newer(
    routine: Project,
) -> None:
    # A scheduler claimed the morning slot of the 22nd and died before its run
    # began; since then another routine's 250 fires started and ended. The
    # orphan must still be found and recorded lost (it once was looked for
    # among the latest 200 started fires only).
    orphan = {
        "id": "playbooks/morning.yaml|0 8 * * *|db|2026-11-22T07:00:00.000Z",
        "playbook": "morning", "playbook_path": "playbooks/morning.yaml",
        "schedule": "0 8 * * *", "target": "db", "slot": "2026-11-22T07:00:00.000Z",
        "count": 1, "status": "started", "run_id": "0123456789ab",
        "scheduler": "gone:1:0", "claimed_at": "2026-11-22T07:00:01.000Z",
    }  # fmt: skip
    settled = [
        {
            "id": f"playbooks/often.yaml|often|db|{i}", "playbook": "often",
            "playbook_path": "playbooks/often.yaml", "schedule": "often", "target": "db",
            "slot": f"2026-11-22T{8 + i // 60:02d}:{i % 60:02d}:00.000Z", "count": 1,
            "status": "started", "run_id": f"run{i:09d}", "scheduler": "other:1:0",
            "claimed_at": "2026-11-22T08:00:00.000Z", "ended_at": "2026-11-22T08:00:01.000Z",
            "run_status": "ok",
        }
        for i in range(250)
    ]  # fmt: skip
    journal = routine.journal()
    try:
        journal.append([_fire_event(row) for row in [orphan, *settled]])
    finally:
        journal.close()
    tick(routine, "2026-11-23T07:05:00Z")
    found = routine.run("history", "--fires", "--playbook", "morning", "--format", "json")
    by_slot = {f["slot"]: f for f in json.loads(found.output)}
    lost = by_slot["2026-11-22T07:00:00.000Z"]
    assert lost["status"] == "error" and lost["reason"].startswith("lost: gone:1:0"), lost
    assert by_slot["2026-11-23T07:00:00.000Z"]["status"] == "started"  # the day's slot ran
