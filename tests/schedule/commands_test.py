"""`runbook schedule list | explain | export` on real project folders, the
clock pinned with $RUNBOOK_NOW."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cronsim import CronSim

from .conftest import Folder

REPO = Path(__file__).resolve().parents[2]
FALL = "2026-10-24T22:00:00Z"  # Berlin's clocks go back at 01:00Z on the 25th


def test_list_shows_every_playbook_and_target_with_the_next_three_fires(
    folder: Folder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNBOOK_NOW", FALL)
    (folder.root / "inventory.yaml").write_text(
        (folder.root / "inventory.yaml").read_text() + "scheduler: {timezone: Europe/Berlin}\n"
    )
    folder.playbook("morning", '"0 8 * * 1-5"')
    folder.playbook("meta", "{every: 5m, targets: both, timezone: America/New_York}")
    folder.playbook("plain", '"0 * * * *"')
    folder.write(
        "playbooks/unscheduled.yaml",
        "name: u\nkind: check\nsteps:\n  - {name: a, query: SELECT 1}\n",
    )
    result = folder.run("schedule", "list", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["playbook"], r["target"]) for r in rows] == [
        ("meta", "db"),
        ("meta", "replica"),
        ("morning", "db"),
        ("plain", "db"),
    ]
    meta, _, morning, plain = rows
    assert meta["schedule"] == "every 5 minutes"
    assert meta["next_utc"] == [
        "2026-10-24T22:05:00.000Z",
        "2026-10-24T22:10:00.000Z",
        "2026-10-24T22:15:00.000Z",
    ]
    assert morning["schedule"] == "at 08:00 on weekdays, Europe/Berlin"  # the inventory's zone
    assert morning["next"] == [
        "2026-10-26T08:00+01:00",
        "2026-10-27T08:00+01:00",
        "2026-10-28T08:00+01:00",
    ]
    assert plain["next"] == [
        "2026-10-25T01:00+02:00",
        "2026-10-25T02:00+02:00",
        "2026-10-25T02:00+01:00",
    ]
    assert (morning["last_fire"], morning["last_result"], morning["last_run_id"]) == (
        None,
        None,
        None,
    )

    text = folder.run("schedule", "list").output.splitlines()
    assert text[0].split() == [
        "PLAYBOOK",
        "TARGET",
        "SCHEDULE",
        "NEXT",
        "FIRES",
        "LAST",
        "FIRE",
        "RESULT",
        "RUN",
        "FLAGS",
    ]
    line = next(t for t in text if t.startswith("morning"))
    assert "at 08:00 on weekdays, Europe/Berlin" in line
    assert "2026-10-26 08:00, 2026-10-27 08:00, 2026-10-28 08:00" in line
    assert line.split()[-4:] == ["-", "-", "-", "-"]  # never fired; no flags
    # The hour that happens twice: offsets shown so the two 02:00 are told apart.
    assert "2026-10-25 02:00+02:00, 2026-10-25 02:00+01:00" in next(
        t for t in text if t.startswith("plain")
    )


def test_list_refuses_a_project_with_a_bad_schedule_at_its_place(folder: Folder) -> None:
    folder.playbook("good", '"0 8 * * *"')
    folder.playbook("bad", '{cron: "0 8 * * *", timezone: Europe/Berln}')
    result = folder.run("schedule", "list")
    assert result.exit_code == 2
    assert (
        "playbooks/bad.yaml:3:41: $.schedule.timezone: unknown time zone 'Europe/Berln'"
        in result.output
    )


def test_explain_marks_the_daylight_saving_changes_and_blackouts(
    folder: Folder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNBOOK_NOW", "2026-03-28T12:00:00Z")
    folder.playbook(
        "night",
        '[{cron: "30 2 * * *", timezone: Europe/Berlin, blackout: [{from: "2026-03-31", to: "2026-03-31"}]},'
        ' {cron: "0 * * * *", timezone: Europe/Berlin}]',
    )
    result = folder.run("schedule", "explain", "night", "--next", "4", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    daily, hourly = report["schedules"]
    assert [f["local"] for f in daily["fires"]] == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
        "2026-04-01T02:30:00+02:00",
    ]
    assert daily["fires"][0]["shifted"] and daily["fires"][0]["marks"] == [
        "clocks changed: UTC+01:00 → UTC+02:00",
        "its local time does not exist that night: fires once, at the first minute after",
    ]
    assert daily["fires"][2]["blackout"] == "2026-03-31 to 2026-03-31"
    assert daily["policies"] == [
        "overlap skip",
        "catch-up latest",
        "starting deadline 1h",
        "blackout 2026-03-31 to 2026-03-31",
    ]
    assert daily["targets"] == ["db"]
    assert hourly["schedule"] == "every hour, on the hour"
    assert [f["utc"][11:16] for f in hourly["fires"]] == ["13:00", "14:00", "15:00", "16:00"]

    monkeypatch.setenv("RUNBOOK_NOW", FALL)
    text = folder.run(
        "schedule", "explain", str(folder.root / "playbooks/night.yaml"), "--next", "3"
    )
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[0] == "night: at 02:30 every day, Europe/Berlin"
    assert lines[2] == (
        "  2026-10-25 02:30 +02:00  (2026-10-25 00:30Z)  ← this local time happens twice "
        "that night: fires once, at the first"
    )
    assert (
        "2026-10-25 02:00 +01:00  (2026-10-25 01:00Z)  ← clocks changed: UTC+02:00 → UTC+01:00; "
        in text.output
    )
    assert "repeated local hour: elapsed time, so it fires in both" in text.output


def test_explain_of_an_unknown_playbook_or_count_is_invalid_input(folder: Folder) -> None:
    folder.playbook("p", '"0 8 * * *"')
    result = folder.run("schedule", "explain", "nope")
    assert result.exit_code == 2
    assert "no playbook file or playbook named 'nope'" in result.output
    assert folder.run("schedule", "explain", "p", "--next", "0").exit_code == 2


def _export_project(folder: Folder) -> None:
    folder.playbook("morning", '{cron: "0 8 * * 1-5", timezone: Europe/Berlin, jitter: 30s}')
    folder.playbook("meta", "{every: 5m, targets: both}")
    folder.playbook("fast", "{every: 7s}")
    folder.playbook("odd", '["0 0 L * *", "0 7 1 * 1"]')
    folder.write(
        "playbooks/per cent.yaml",
        'name: per-cent\nkind: check\nschedule: "15 3 * * *"\nsteps:\n  - {name: a, query: SELECT 1}\n',
    )


def test_export_cron_lines_parse_with_the_cron_library(folder: Folder) -> None:
    _export_project(folder)
    result = folder.run("schedule", "export", "--cron")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    jobs = [
        line for line in lines if line and not line.startswith("#") and "=" not in line.split()[0]
    ]
    assert len(jobs) == 5  # meta ×2, morning, odd's second, per-cent; fast and L are comments
    for line in jobs:
        fields = line.split()
        CronSim(" ".join(fields[:5]), dt.datetime(2026, 1, 1))
        assert " run " in line and " -t " in line and " -i " in line
    assert "CRON_TZ=Europe/Berlin" in lines and "CRON_TZ=UTC" in lines
    morning = next(line for line in jobs if "morning.yaml" in line)
    assert morning.startswith("0 8 * * 1-5 cd ")
    assert lines[lines.index(morning) - 1] == "CRON_TZ=Europe/Berlin"
    assert "'" + str(folder.root / "playbooks" / "per cent.yaml") + "'" in result.output
    assert "# fast on db: every 7 seconds" in lines
    fast = lines.index("# fast on db: every 7 seconds")
    assert lines[fast + 1].startswith("# (not in cron's syntax")


def test_export_systemd_units_verify(folder: Folder, tmp_path: Path) -> None:
    _export_project(folder)
    units = tmp_path / "units"
    result = folder.run("schedule", "export", "--systemd", str(units))
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in units.iterdir())
    assert "runbook-morning-db.service" in names and "runbook-morning-db.timer" in names
    assert "runbook-odd-db.timer" in names and "runbook-odd-db-2.timer" in names
    timer = (units / "runbook-morning-db.timer").read_text()
    assert "OnCalendar=Mon,Tue,Wed,Thu,Fri *-*-* 08:00:00 Europe/Berlin" in timer
    assert "RandomizedDelaySec=30s" in timer and "Persistent=true" in timer
    assert "OnCalendar=*-*-* *:00/5:00 UTC" in (units / "runbook-meta-replica.timer").read_text()
    assert "OnUnitActiveSec=7s" in (units / "runbook-fast-db.timer").read_text()
    service = (units / "runbook-per-cent-db.service").read_text()
    assert f'"{folder.root / "playbooks" / "per cent.yaml"}"' in service
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here")
    files = [str(p) for p in sorted(units.iterdir())]
    verify = subprocess.run(["systemd-analyze", "verify", *files], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    for path in units.glob("*.timer"):
        for line in path.read_text().splitlines():
            if line.startswith("OnCalendar="):
                check = subprocess.run(
                    ["systemd-analyze", "calendar", line.removeprefix("OnCalendar=")],
                    capture_output=True,
                    text=True,
                )
                assert check.returncode == 0, (line, check.stderr)


def test_export_wants_one_of_cron_and_systemd(folder: Folder, tmp_path: Path) -> None:
    folder.playbook("p", '"0 8 * * *"')
    assert folder.run("schedule", "export").exit_code == 2
    assert (
        folder.run("schedule", "export", "--cron", "--systemd", str(tmp_path / "u")).exit_code == 2
    )


def test_the_bundled_routines_are_listed_with_their_next_fires(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for part in ("playbooks", "sql"):
        shutil.copytree(REPO / part, tmp_path / part)
    shutil.copy(REPO / "inventory.yaml", tmp_path / "inventory.yaml")
    monkeypatch.delenv("RUNBOOK_INVENTORY", raising=False)
    monkeypatch.setenv("RUNBOOK_NOW", "2026-12-04T07:00:00Z")
    result = Folder(tmp_path).run("schedule", "list", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["playbook"]: r for r in json.loads(result.output)}
    assert rows["constraint-morning-check"]["schedule"].startswith("at 08:00 every day")
    assert rows["constraint-morning-check"]["next_utc"][0] == "2026-12-04T08:00:00.000Z"
    assert rows["constraint-midday-check"]["schedule"].startswith("at 12:00 every day")
    assert rows["constraint-evening-review"]["schedule"].startswith("at 17:00 every day")
    assert rows["constraint-weekly-maintenance"]["schedule"].startswith("at 06:00 on Mondays")
    assert rows["constraint-monthly-review"]["schedule"].startswith(
        "at 07:00 on the 1st of every month"
    )
    assert rows["festival-hourly-verification"]["schedule"] == "every hour"
    assert rows["festival-meta-monitoring"]["schedule"] == "every 5 minutes"
    assert rows["festival-meta-monitoring"]["next_utc"][:2] == [
        "2026-12-04T07:05:00.000Z",
        "2026-12-04T07:10:00.000Z",
    ]
