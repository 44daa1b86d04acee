"""A playbook's `strategy:` (waves, the failure budget over the whole run,
order), `--limit`, and `run_on` against a real standby. Each target's
outcome is read from the journal."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from runbook.fleet.strategy import Budget, waves
from runbook.model import Strategy
from runbook.outcome import RunOutcome, RunStatus
from runbook.pg import embedded
from tests.conftest import PgServer, Project

CHECK = """name: quick
kind: check
{strategy}steps:
  - name: answer
    query: SELECT 1 AS one
    gate: {{that: "answer.first.one == 1"}}
    register: answer
"""

WRITING = """name: mark
kind: change
{extra}steps:
  - name: mark
    sql: CREATE TABLE IF NOT EXISTS marked (at timestamptz DEFAULT now())
"""


def outcome(status: RunStatus) -> RunOutcome:
    return RunOutcome("r", "p", "t", "run", status)


def test_waves_cut_counts_and_percentages_and_repeat_the_last() -> None:
    items = list(range(20))
    assert [len(w) for w in waves(items, [1, "10%", "50%"])] == [1, 2, 10, 7]
    assert [len(w) for w in waves(items, [5])] == [5, 5, 5, 5]
    assert [len(w) for w in waves(items, ["1%"])] == [1] * 20  # at least one target
    assert waves(items, []) == [items]
    assert [i for wave in waves(items, [3, "25%"]) for i in wave] == items


def test_the_budget_counts_the_whole_run_and_trips_past_its_allowance() -> None:
    budget = Budget(20, Strategy(max_failures=("percent", 10)))  # 2 of 20 may fail
    for status in (RunStatus.OK, RunStatus.FAILED, RunStatus.SKIPPED, RunStatus.UNREACHABLE):
        budget.count(outcome(status))
    assert budget.tripped is None
    budget.count(outcome(RunStatus.GATE_FAILED))
    assert budget.tripped is not None and "3 of 5" in budget.tripped
    assert "max_failures: 10%" in budget.tripped
    zero = Budget(5, Strategy(max_failures=("count", 0)))
    zero.count(outcome(RunStatus.INTERRUPTED))
    assert zero.tripped is not None
    unlimited = Budget(5, Strategy())
    for _ in range(5):
        unlimited.count(outcome(RunStatus.FAILED))
    assert unlimited.tripped is None


@pytest.fixture
def fleet(project: Project, pg_server: PgServer) -> Iterator[Project]:
    """Four reachable targets (t0..t3) and two that refuse (gone1, gone2)."""
    names = [pg_server.create_database() for _ in range(3)]
    dsns = [project.dsn, *(pg_server.dsn_for(n) for n in names)]
    targets = "".join(f"  t{i}:\n    dsn: {dsn!r}\n" for i, dsn in enumerate(dsns))
    gone = "".join(
        f"  gone{i}:\n    dsn: 'host=/nonexistent-{i} dbname=x connect_timeout=1'\n" for i in (1, 2)
    )
    project.write(
        "inventory.yaml",
        f"targets:\n{targets}{gone}groups:\n"
        "  all: [t0, gone1, t1, gone2, t2, t3]\n  good: [t0, t1, t2, t3]\n"
        "default_target: t0\n",
    )
    try:
        yield project
    finally:
        for name in names:
            pg_server.drop_database(name)


# The group in order, the budget spent by the second refusal: the rest never started.
BUDGET_SPENT = {
    "t0": "ok",
    "gone1": "unreachable",
    "t1": "ok",
    "gone2": "unreachable",
    "t2": "not_run",
    "t3": "not_run",
}


def statuses(project: Project) -> dict[str, dict[str, object]]:
    return {r["target"]: r for r in project.runs()}


def test_the_budget_spans_the_waves_and_the_rest_is_not_run(fleet: Project) -> None:
    # Waves of two, one failure allowed: the first wave spends one, the second
    # a second one, which is one too many; counted per wave, the third wave
    # would have run.
    strategy = "strategy: {forks: 2, waves: [2], max_failures: {count: 1}}\n"
    fleet.playbook(CHECK.format(strategy=strategy), "quick.yaml")
    result = fleet.run("run", "playbooks/quick.yaml", "-t", "all")
    assert result.exit_code == 3, result.output
    runs = statuses(fleet)
    assert {t: r["status"] for t, r in runs.items()} == BUDGET_SPENT
    reason = str(runs["t2"]["reason"])
    assert "failure budget (max_failures: 1)" in reason and re.search(r"2 of [34] target", reason)
    assert all(s["status"] == "not_run" for s in runs["t3"]["steps"])  # type: ignore[attr-defined]
    # The summary counts them apart, and names the fleet run.
    assert "6 target(s): 2 unreachable, 2 not_run, 2 ok" in result.output
    fleet_id = re.search(r"fleet run (\w+): runbook show", result.output)
    assert fleet_id, result.output
    shown = fleet.run("show", fleet_id.group(1))
    assert shown.exit_code == 0, shown.output
    for target in ("t0", "gone1", "t1", "gone2", "t2", "t3"):
        assert re.search(rf"^{target}\s", shown.output, re.M), shown.output
    # --rerun-failed takes the unreachable ones, not those the budget held back.
    again = fleet.run("run", "playbooks/quick.yaml", "--rerun-failed", fleet_id.group(1))
    assert sorted(r["target"] for r in fleet.runs()[6:]) == ["gone1", "gone2"], again.output


def test_a_budget_in_percent_over_the_whole_group(fleet: Project) -> None:
    strategy = "strategy: {forks: 1, max_failures: {percent: 20}}\n"  # 1 of 6 may fail
    fleet.playbook(CHECK.format(strategy=strategy), "quick.yaml")
    result = fleet.run("run", "playbooks/quick.yaml", "-t", "all")
    assert result.exit_code == 3, result.output
    assert {t: r["status"] for t, r in statuses(fleet).items()} == BUDGET_SPENT


def test_without_a_budget_every_target_runs_in_random_order_too(fleet: Project) -> None:
    fleet.playbook(CHECK.format(strategy="strategy: {order: random}\n"), "quick.yaml")
    result = fleet.run("run", "playbooks/quick.yaml", "-t", "all", "--format", "json")
    assert result.exit_code == 3
    document = json.loads(result.output)
    assert document["counts"] == {"ok": 4, "unreachable": 2}
    assert document["fleet"] and len(document["runs"]) == 6


def test_limit_takes_globs_and_leaves_out_with_a_bang(fleet: Project) -> None:
    fleet.playbook(CHECK.format(strategy=""), "quick.yaml")
    result = fleet.run("run", "playbooks/quick.yaml", "-t", "all", "--limit", "t*,!t2")
    assert result.exit_code == 0, result.output
    assert sorted(statuses(fleet)) == ["t0", "t1", "t3"]
    typo = fleet.run("run", "playbooks/quick.yaml", "-t", "all", "--limit", "t*", "--limit", "!tt2")
    assert typo.exit_code == 2
    assert "--limit '!tt2' matches no target here" in typo.output
    nothing = fleet.run("run", "playbooks/quick.yaml", "-t", "good", "--limit", "t0,!t*")
    assert nothing.exit_code == 2 and "leaves no target" in nothing.output


def test_the_junit_of_a_fleet_run_has_a_suite_per_target(fleet: Project, tmp_path: Path) -> None:
    from xml.etree import ElementTree

    fleet.playbook(CHECK.format(strategy=""), "quick.yaml")
    result = fleet.run("run", "playbooks/quick.yaml", "-t", "all")
    found = re.search(r"fleet run (\w+): runbook show", result.output)
    assert found, result.output
    out = tmp_path / "fleet.xml"
    shown = fleet.run("show", found.group(1), "--junit", str(out))
    assert shown.exit_code == 0, shown.output
    suites = ElementTree.parse(out).getroot().findall("testsuite")
    assert sorted(s.get("name", "") for s in suites) == sorted(
        f"quick@{t}" for t in ("t0", "t1", "t2", "t3", "gone1", "gone2")
    )
    gone = next(s for s in suites if s.get("name") == "quick@gone1")
    assert gone.get("errors") == "1"


def test_nagios_exit_codes_take_the_worst_severity_over_the_targets(fleet: Project) -> None:
    playbook = """name: sized
kind: check
steps:
  - name: size
    query: SELECT current_database() AS db
    register: size
    gate: {that: "size.first.db != %r", severity: WARNING}
"""
    database = fleet.dsn.split("dbname=")[1].split()[0]
    fleet.playbook(playbook % database, "sized.yaml")
    result = fleet.run("run", "playbooks/sized.yaml", "-t", "good", "--exit-codes", "nagios")
    assert result.exit_code == 1, result.output  # WARNING on t0, OK elsewhere
    assert result.output.startswith("RUNBOOK WARNING")


# -- run_on, against a real standby -------------------------------------------


@pytest.fixture(scope="module")
def standby(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server in recovery: a cluster started with standby.signal (it waits for
    WAL that never comes, answering read-only queries meanwhile)."""
    pgdata = tmp_path_factory.mktemp("standby") / "pg"
    server = embedded.start(pgdata)
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("CREATE DATABASE app")
    embedded.stop(pgdata)
    (pgdata / "standby.signal").write_text("")
    server = embedded.start(pgdata)
    try:
        yield server.database_dsn("app")
    finally:
        embedded.stop(pgdata)


@pytest.fixture
def pair(project: Project, standby: str) -> Project:
    project.write(
        "inventory.yaml",
        f"targets:\n  primary:\n    dsn: {project.dsn!r}\n  replica:\n    dsn: {standby!r}\n"
        "groups:\n  both: [primary, replica]\ndefault_target: primary\n",
    )
    return project


def test_a_writing_playbook_skips_a_standby_with_the_reason(pair: Project) -> None:
    pair.playbook(WRITING.format(extra=""), "mark.yaml")
    result = pair.run("run", "playbooks/mark.yaml", "-t", "both", "--yes")
    assert result.exit_code == 0, result.output
    runs = statuses(pair)
    assert runs["primary"]["status"] == "ok"
    assert runs["replica"]["status"] == "skipped"
    assert "run_on: primary, and this server is a standby" in str(runs["replica"]["reason"])
    assert all(s["status"] == "skipped" for s in runs["replica"]["steps"])  # type: ignore[attr-defined]


def test_a_check_for_standbys_skips_the_primary(pair: Project) -> None:
    pair.playbook(
        CHECK.format(strategy="run_on: standby\n").replace("name: quick", "name: lag"), "lag.yaml"
    )
    result = pair.run("run", "playbooks/lag.yaml", "-t", "both")
    assert result.exit_code == 0, result.output
    runs = statuses(pair)
    assert runs["replica"]["status"] == "ok"
    assert runs["primary"]["status"] == "skipped"
    assert "this server is a primary" in str(runs["primary"]["reason"])


def test_a_writing_playbook_may_not_ask_for_a_standby(pair: Project) -> None:
    pair.playbook(WRITING.format(extra="run_on: standby\n"), "mark.yaml")
    result = pair.run("validate", "playbooks/mark.yaml")
    assert result.exit_code == 2
    assert re.search(r"mark\.yaml:3:\d+: .*writing playbook runs on a primary only", result.output)
