"""`runbook run -t GROUP --forks N`: targets at once, at most `per_server` on
one server, each line as it ends; Ctrl-C interrupts every target's statement
and journals each. Concurrency is read from the journal's start and end times,
never from a clock's threshold."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.conftest import PgServer, Project

SLOW = """name: slow
kind: check
steps:
  - name: wait
    query: SELECT pg_sleep({seconds}) IS NULL AS slept
"""


@pytest.fixture
def fleet(project: Project, pg_server: PgServer) -> Iterator[Project]:
    """Four targets, four databases on one server, grouped."""
    names = [pg_server.create_database() for _ in range(3)]
    dsns = [project.dsn, *(pg_server.dsn_for(n) for n in names)]
    targets = "".join(f"  t{i}:\n    dsn: {dsn!r}\n" for i, dsn in enumerate(dsns))
    project.write(
        "inventory.yaml",
        f"targets:\n{targets}groups:\n  all: [t0, t1, t2, t3]\ndefault_target: t0\n",
    )
    project.databases = [project.dsn.split("dbname=")[1].split()[0], *names]  # type: ignore[attr-defined]
    try:
        yield project
    finally:
        for name in names:
            pg_server.drop_database(name)


def overlap(runs: list[dict[str, Any]]) -> int:
    """The most runs that were going at one moment (from their recorded times)."""
    points = sorted(
        [(r["started_at"], 1) for r in runs] + [(r["ended_at"], -1) for r in runs],
        key=lambda p: (p[0], p[1]),
    )
    going = most = 0
    for _, change in points:
        going += change
        most = max(most, going)
    return most


def test_forks_run_the_targets_at_once_each_line_as_it_ends(fleet: Project) -> None:
    fleet.playbook(SLOW.format(seconds=1), "slow.yaml")
    result = fleet.run("run", "playbooks/slow.yaml", "-t", "all", "--forks", "4")
    assert result.exit_code == 0, result.output
    runs = fleet.runs()
    assert sorted(r["target"] for r in runs) == ["t0", "t1", "t2", "t3"]
    assert overlap(runs) == 4
    lines = [line for line in result.output.splitlines() if line.startswith("t")]
    assert len([line for line in lines if " ok " in line]) >= 4


def test_per_server_caps_the_targets_on_one_server(fleet: Project) -> None:
    text = (fleet.root / "inventory.yaml").read_text()
    fleet.write("inventory.yaml", text + "defaults: {per_server: 2}\n")
    fleet.playbook(SLOW.format(seconds=0.5), "slow.yaml")
    result = fleet.run("run", "playbooks/slow.yaml", "-t", "all", "--forks", "4")
    assert result.exit_code == 0, result.output
    assert overlap(fleet.runs()) == 2


def test_with_one_fork_the_targets_run_one_after_another(fleet: Project) -> None:
    fleet.playbook(SLOW.format(seconds=0.2), "slow.yaml")
    assert fleet.run("run", "playbooks/slow.yaml", "-t", "all", "--forks", "1").exit_code == 0
    assert overlap(fleet.runs()) == 1


def test_a_group_runs_ten_at_once_unless_the_inventory_says_otherwise(fleet: Project) -> None:
    fleet.playbook(SLOW.format(seconds=0.5), "slow.yaml")
    assert fleet.run("run", "playbooks/slow.yaml", "-t", "all").exit_code == 0
    assert overlap(fleet.runs()) == 4
    text = (fleet.root / "inventory.yaml").read_text()
    fleet.write("inventory.yaml", text + "defaults: {forks: 2}\n")
    assert fleet.run("run", "playbooks/slow.yaml", "-t", "all").exit_code == 0
    assert overlap(fleet.runs()[4:]) == 2


SLEEPING = (
    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%%'"
    " AND datname = ANY(%s)"
)


def _ctrl_c_once_sleeping(fleet: Project, forks: int) -> None:
    """`runbook run -t all --forks N` of the 60 s playbook, sent SIGINT once
    `forks` of its statements sleep on the server: it exits 130."""
    ours = fleet.databases  # type: ignore[attr-defined]
    fleet.playbook(SLOW.format(seconds=60), "slow.yaml")
    argv = [sys.executable, "-m", "runbook", "run", "playbooks/slow.yaml", "-t", "all"]
    process = subprocess.Popen(
        [*argv, "--forks", str(forks)],
        cwd=fleet.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with psycopg.connect(fleet.dsn) as conn:
            sleeping = conn.execute(SLEEPING, (ours,)).fetchone()
        if sleeping and sleeping[0] == forks:
            break
        time.sleep(0.2)
    else:
        process.kill()
        raise AssertionError(f"{forks} statement(s) never ran at once")
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output.decode()


@pytest.mark.timeout(120)
def test_ctrl_c_interrupts_every_target_and_journals_each(fleet: Project) -> None:
    _ctrl_c_once_sleeping(fleet, 4)
    runs = fleet.runs()
    assert len(runs) == 4 and all(r["status"] == "interrupted" for r in runs), runs
    with psycopg.connect(fleet.dsn) as conn:  # every statement was cancelled on its server
        left = conn.execute(SLEEPING, (fleet.databases,)).fetchone()  # type: ignore[attr-defined]
    assert left == (0,)


@pytest.mark.timeout(120)
def test_ctrl_c_one_target_after_another_journals_the_rest_not_run(fleet: Project) -> None:
    """--forks 1: the target running is interrupted, the ones after it are
    journaled not_run with why, and all four share one fleet run id."""
    _ctrl_c_once_sleeping(fleet, 1)
    runs = {r["target"]: r for r in fleet.runs()}
    assert runs["t0"]["status"] == "interrupted", runs
    assert {runs[t]["status"] for t in ("t1", "t2", "t3")} == {"not_run"}, runs
    fleets = {r["selection"]["fleet"] for r in runs.values()}
    assert len(fleets) == 1, fleets
    (fleet_id,) = fleets
    shown = fleet.run("show", fleet_id)
    assert "interrupted (Ctrl-C) before it started" in shown.output, shown.output


def test_an_unreachable_target_is_its_own_status_and_the_others_complete(
    fleet: Project,
) -> None:
    text = (fleet.root / "inventory.yaml").read_text()
    fleet.write(
        "inventory.yaml",
        text.replace("groups:", "  gone:\n    dsn: 'host=/nonexistent dbname=x connect_timeout=1'\ngroups:")
        .replace("all: [t0, t1, t2, t3]", "all: [t0, gone, t1]"),
    )  # fmt: skip
    fleet.playbook(SLOW.format(seconds=0.1), "slow.yaml")
    result = fleet.run("run", "playbooks/slow.yaml", "-t", "all", "--forks", "3")
    assert result.exit_code == 3, result.output
    status = {r["target"]: r["status"] for r in fleet.runs()}
    assert status == {"t0": "ok", "t1": "ok", "gone": "unreachable"}
    assert any(
        line.startswith("gone") and "unreachable" in line for line in result.output.splitlines()
    )


def test_the_fleet_run_groups_its_runs_shows_a_matrix_and_reruns_its_failures(
    fleet: Project,
) -> None:
    import json
    import re

    text = (fleet.root / "inventory.yaml").read_text()
    fleet.write(
        "inventory.yaml",
        text.replace("groups:", "  gone:\n    dsn: 'host=/nonexistent dbname=x'\ngroups:")
        .replace("all: [t0, t1, t2, t3]", "all: [t0, gone, t1, t2]"),
    )  # fmt: skip
    fleet.playbook(SLOW.format(seconds=0.1), "slow.yaml")
    result = fleet.run("run", "playbooks/slow.yaml", "-t", "all", "--forks", "4")
    assert result.exit_code == 3
    found = re.search(r"fleet run (\w+): runbook show", result.output)
    assert found, result.output
    fleet_id = found.group(1)
    shown = fleet.run("show", fleet_id)
    assert shown.exit_code == 0, shown.output
    rows = {line.split()[0]: line for line in shown.output.splitlines()[4:8]}
    assert set(rows) == {"t0", "t1", "t2", "gone"}
    assert "unreachable" in rows["gone"] and " ok " in rows["t0"]
    data = json.loads(fleet.run("show", fleet_id, "--format", "json").output)
    assert sorted(r["target"] for r in data["runs"]) == ["gone", "t0", "t1", "t2"]
    again = fleet.run("run", "playbooks/slow.yaml", "--rerun-failed", fleet_id, "--forks", "4")
    assert again.exit_code == 3
    assert [r["target"] for r in fleet.runs()[4:]] == ["gone"]  # only the failure, again
    wrong = fleet.run("run", "playbooks/other.yaml", "--rerun-failed", fleet_id)
    assert wrong.exit_code == 2
