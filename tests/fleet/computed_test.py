"""Computed groups (`targets_from:`), on the real server: a cluster's databases
matching a pattern, or a fleet file's `name=DSN` lines, run with `-t GROUP`
through the real CLI like any group. A fleet file is checked before anything
connects, each problem at its line and column; its passwords never show."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from runbook import service
from runbook.errors import UsageError
from runbook.fleet import computed
from tests.conftest import PgServer, Project

WHERE = """name: where
kind: check
steps:
  - name: which database
    query: SELECT current_database() AS d
    register: here
    gate: {that: "here.scalar != ''"}
"""

BASE = "targets:\n  db:\n    dsn: {dsn!r}\n{extra}default_target: db\ngroups:\n{groups}"


@pytest.fixture
def cluster(project: Project, pg_server: PgServer) -> Iterator[tuple[Project, str]]:
    """Databases on the test server under a prefix of this test's own: two
    matching `PREFIX_app%`, one not, one that allows no connections and one
    template (both matching, both left out)."""
    prefix = f"c{uuid.uuid4().hex[:8]}"
    made = [
        f"{prefix}_app2",
        f"{prefix}_app1",
        f"{prefix}_other",
        f"{prefix}_app3",
        f"{prefix}_app4",
    ]
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        for name in made:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(
                sql.Identifier(f"{prefix}_app3")
            )
        )
        conn.execute(
            sql.SQL("ALTER DATABASE {} IS_TEMPLATE true").format(sql.Identifier(f"{prefix}_app4"))
        )
    project.playbook(WHERE, "where.yaml")
    try:
        yield project, prefix
    finally:
        with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(
                    sql.Identifier(f"{prefix}_app4")
                )
            )
        for name in made:
            pg_server.drop_database(name)


def _inventory(project: Project, groups: str, extra_targets: str = "") -> None:
    project.write(
        "inventory.yaml", BASE.format(dsn=project.dsn, extra=extra_targets, groups=groups)
    )


def _targets(project: Project, *chosen: str) -> list[str]:
    spec = service.RunSpec(project.root / "playbooks" / "where.yaml", targets=chosen)
    return [t.name for t in service.prepare(spec).targets]


def test_a_cluster_group_is_its_matching_databases_in_order_of_name(
    cluster: tuple[Project, str],
) -> None:
    project, prefix = cluster
    _inventory(
        project, f"  apps: {{targets_from: {{cluster: db, databases: '{prefix}\\_app%'}}}}\n"
    )
    assert project.run("validate").exit_code == 0
    result = project.run("run", "playbooks/where.yaml", "-t", "apps")
    assert result.exit_code == 0, result.output
    runs = project.runs()
    # They run at once (the default forks): the group is in order of name.
    assert _targets(project, "apps") == [f"db/{prefix}_app1", f"db/{prefix}_app2"]
    assert sorted(r["target"] for r in runs) == [f"db/{prefix}_app1", f"db/{prefix}_app2"]
    # Each ran in its own database, with the cluster's settings.
    for run in runs:
        assert run["status"] == "ok"
    assert f"db/{prefix}_app1" in result.output


def test_a_cluster_target_keeps_the_cluster_settings_and_takes_its_dbname(
    cluster: tuple[Project, str],
) -> None:
    project, prefix = cluster
    project.write(
        "inventory.yaml",
        f"targets:\n  db:\n    dsn: {project.dsn!r}\n    tags: [prod]\n    read_only: true\n"
        f"    vars: {{team: blue}}\n"
        f"groups:\n  apps: {{targets_from: {{cluster: db, databases: '{prefix}_app%'}}}}\n",
    )
    spec = service.RunSpec(project.root / "playbooks" / "where.yaml", targets=("apps",))
    first = service.prepare(spec).targets[0]
    assert first.name == f"db/{prefix}_app1"
    assert first.tags == {"prod"} and first.read_only and first.vars == {"team": "blue"}
    assert isinstance(first.dsn, str) and f"dbname={prefix}_app1" in first.dsn


def test_one_target_of_a_cluster_group_is_found_by_its_name(
    cluster: tuple[Project, str],
) -> None:
    """A resume or --rerun-failed names one computed target: it is found too."""
    project, prefix = cluster
    _inventory(project, f"  apps: {{targets_from: {{cluster: db, databases: '{prefix}_app%'}}}}\n")
    assert _targets(project, f"db/{prefix}_app2") == [f"db/{prefix}_app2"]
    result = project.run("run", "playbooks/where.yaml", "-t", f"db/{prefix}_other")
    assert result.exit_code == 2, result.output
    assert "unknown target or group" in result.output


def test_a_pattern_matching_nothing_is_an_error_naming_the_group_and_pattern(
    cluster: tuple[Project, str],
) -> None:
    project, prefix = cluster
    _inventory(project, f"  apps: {{targets_from: {{cluster: db, databases: '{prefix}_nope%'}}}}\n")
    result = project.run("run", "playbooks/where.yaml", "-t", "apps")
    assert result.exit_code == 2, result.output
    assert f"group 'apps': no database of 'db' matches '{prefix}_nope%'" in result.output
    assert project.runs() == []


def test_an_unreachable_cluster_is_exit_3_and_nothing_runs(project: Project) -> None:
    project.playbook(WHERE, "where.yaml")
    _inventory(
        project,
        "  apps: {targets_from: {cluster: gone, databases: 'x%'}}\n",
        "  gone:\n    dsn: 'host=/nonexistent dbname=x password=Gone-Secret-77'\n"
        "    connect_timeout: 1\n",
    )
    result = project.run("run", "playbooks/where.yaml", "-t", "apps")
    assert result.exit_code == 3, result.output
    assert "group 'apps': cannot list the databases of 'gone'" in result.output
    assert "Gone-Secret-77" not in result.output
    assert project.runs() == []


def test_an_unknown_cluster_is_a_validation_problem(project: Project) -> None:
    _inventory(project, "  apps: {targets_from: {cluster: dbb, databases: 'x%'}}\n")
    result = project.run("validate", "inventory.yaml")
    assert result.exit_code == 2
    assert (
        "inventory.yaml:6:34: $.groups.apps.targets_from.cluster: unknown target 'dbb' "
        "(did you mean 'db'?)" in result.output
    )


def test_a_computed_group_may_be_a_playbooks_targets(cluster: tuple[Project, str]) -> None:
    project, prefix = cluster
    _inventory(project, f"  apps: {{targets_from: {{cluster: db, databases: '{prefix}_app%'}}}}\n")
    project.playbook(WHERE.replace("kind: check", "kind: check\ntargets: apps"), "where.yaml")
    assert project.run("validate").exit_code == 0
    result = project.run("run", "playbooks/where.yaml", "--forks", "2")
    assert result.exit_code == 0, result.output
    assert sorted(r["target"] for r in project.runs()) == [
        f"db/{prefix}_app1",
        f"db/{prefix}_app2",
    ]


# --- fleet files -----------------------------------------------------------------


@pytest.fixture
def two(project: Project, pg_server: PgServer) -> Iterator[list[str]]:
    names = [pg_server.create_database() for _ in range(2)]
    project.playbook(WHERE, "where.yaml")
    try:
        yield names
    finally:
        for name in names:
            pg_server.drop_database(name)


def _uri(dsn: str, password: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(dsn)
    host = str(params.get("host", ""))
    port = params.get("port", 5432)
    user = params.get("user", "")
    return (
        f"postgresql://{user}:{password}@/{params['dbname']}?host={host}&port={port}"
        if host.startswith("/")
        else f"postgresql://{user}:{password}@{host}:{port}/{params['dbname']}"
    )


def test_a_fleet_file_runs_its_targets_and_its_passwords_never_show(
    project: Project, pg_server: PgServer, two: list[str]
) -> None:
    """The test server trusts local connections: a password is sent and ignored."""
    first = pg_server.dsn_for(two[0]) + " password=Fleet-Secret-One"
    second = _uri(pg_server.dsn_for(two[1]), "Fleet-Secret-Two")
    project.write(
        "fleet.txt",
        f"# the fleet\n\nshop-eu={first}\n  shop-us = {second}\n",
    )
    _inventory(project, "  fleet:\n    targets_from: {file: fleet.txt}\n")
    assert project.run("validate").exit_code == 0
    result = project.run("run", "playbooks/where.yaml", "-t", "fleet", "--forks", "2")
    assert result.exit_code == 0, result.output
    runs = project.runs()
    assert sorted(r["target"] for r in runs) == ["shop-eu", "shop-us"]
    shown = project.run("show", runs[0]["id"], "--format", "json")
    for secret in ("Fleet-Secret-One", "Fleet-Secret-Two"):
        assert secret not in result.output
        assert secret not in shown.output
        assert secret.encode() not in project.journal_bytes()
    # One target of the file by its name (a resume, a --rerun-failed).
    assert _targets(project, "shop-us") == ["shop-us"]


def test_a_fleet_target_failing_shows_no_password(
    project: Project, pg_server: PgServer, two: list[str]
) -> None:
    gone = "host=/nonexistent dbname=x connect_timeout=1 password=Gone-Secret-88"
    project.write("fleet.txt", f"ok={pg_server.dsn_for(two[0])}\ngone={gone}\n")
    _inventory(project, "  fleet: {targets_from: {file: fleet.txt}}\n")
    result = project.run("run", "playbooks/where.yaml", "-t", "fleet")
    assert result.exit_code == 3, result.output
    assert "Gone-Secret-88" not in result.output
    assert b"Gone-Secret-88" not in project.journal_bytes()
    assert {r["target"]: r["status"] for r in project.runs()} == {
        "ok": "ok",
        "gone": "unreachable",
    }


BAD_FLEET = """\
# every line here is wrong but the first
good=host=/tmp dbname=a
just-a-dsn-with-Bad-Secret-1
bad name=host=/tmp
good=host=/tmp dbname=b
db=host=/tmp dbname=c
apps=host=/tmp dbname=d
broken=host=/tmp dbname='unterminated Bad-Secret-2
   empty =
"""


def test_every_problem_of_a_fleet_file_is_reported_at_its_line_and_column(
    project: Project,
) -> None:
    project.write("fleet.txt", BAD_FLEET)
    _inventory(
        project,
        "  fleet: {targets_from: {file: fleet.txt}}\n  apps: [db]\n",
    )
    result = project.run("validate")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("fleet.txt")]
    assert lines == [
        "fleet.txt:3:1: expected name=DSN (a # starts a comment line)",
        "fleet.txt:4:1: the name before the first '=' must be letters, digits, '.', '-' and '_', "
        "starting with a letter or digit",
        "fleet.txt:5:1: target 'good' is listed twice (first on line 2)",
        "fleet.txt:6:1: 'db' is a target of the inventory: choose another name",
        "fleet.txt:7:1: 'apps' is a group of the inventory: choose another name",
        "fleet.txt:8:8: target 'broken': invalid DSN: unterminated quoted string in connection info string",
        "fleet.txt:9:11: target 'empty': no DSN after '='",
    ], result.output
    assert "Bad-Secret" not in result.output
    # A run is refused the same way, before anything connects.
    project.playbook(WHERE, "where.yaml")
    run = project.run("run", "playbooks/where.yaml", "-t", "db")
    assert run.exit_code == 2 and "fleet.txt:3:1" in run.output
    assert "Bad-Secret" not in run.output


def test_a_missing_fleet_file_is_reported_where_the_inventory_names_it(project: Project) -> None:
    _inventory(project, "  fleet: {targets_from: {file: nowhere.txt}}\n")
    result = project.run("validate")
    assert result.exit_code == 2
    assert (
        "inventory.yaml:6:32: $.groups.fleet.targets_from.file: cannot read nowhere.txt: "
        "No such file or directory" in result.output
    )


def test_a_fleet_file_is_bounded(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    project.write("fleet.txt", "# a comment\n" * (computed.MAX_LINES + 1))
    _inventory(project, "  fleet: {targets_from: {file: fleet.txt}}\n")
    result = project.run("validate")
    assert result.exit_code == 2
    assert f"fleet.txt:{computed.MAX_LINES + 1}:1: more than 100,000 lines" in result.output
    monkeypatch.setattr(computed, "MAX_BYTES", 1024)
    project.write("fleet.txt", "x=dbname=y\n" * 100)
    result = project.run("validate")
    assert result.exit_code == 2
    assert "fleet.txt:1:1: larger than 1,024 bytes" in result.output


def test_a_fleet_file_of_many_lines_is_read_quickly(project: Project, tmp_path: Path) -> None:
    lines = "".join(f"t{i}=host=/tmp dbname=d{i} password=p{i}\n" for i in range(20_000))
    project.write("fleet.txt", lines)
    _inventory(project, "  fleet: {targets_from: {file: fleet.txt}}\n")
    project.playbook(WHERE, "where.yaml")
    spec = service.RunSpec(project.root / "playbooks" / "where.yaml", targets=("fleet",))
    prepared = service.prepare(spec)
    assert len(prepared.targets) == 20_000
    assert prepared.targets[-1].name == "t19999"


def test_a_computed_group_is_refused_where_it_cannot_be_found(project: Project) -> None:
    """Only a run finds a computed group's targets; another command says so."""
    from runbook import plan
    from runbook.load import inventory as inventory_file
    from runbook.load import loader

    _inventory(project, "  fleet: {targets_from: {file: fleet.txt}}\n")
    project.write("fleet.txt", "")
    inventory = inventory_file.require_inventory(project.root / "inventory.yaml")
    project.playbook(WHERE, "where.yaml")
    playbook, _ = loader.load_playbook(project.root / "playbooks" / "where.yaml")
    assert playbook is not None
    with pytest.raises(UsageError, match="computed \\(targets_from\\)"):
        plan.resolve_targets(playbook, inventory, ("fleet",))


def test_a_schedule_on_a_computed_group_is_refused_at_validation(project: Project) -> None:
    """The scheduler lists its pairs without connecting: it cannot find the targets."""
    project.write("fleet.txt", "one=dbname=x\n")
    _inventory(project, "  fleet: {targets_from: {file: fleet.txt}}\n")
    project.playbook(WHERE.replace("kind: check", "kind: check\ntargets: fleet"), "where.yaml")
    assert project.run("validate").exit_code == 0
    project.playbook(
        WHERE.replace("kind: check", "kind: check\ntargets: fleet\nschedule: '0 8 * * *'"),
        "where.yaml",
    )
    result = project.run("validate")
    assert result.exit_code == 2
    assert (
        "playbooks/where.yaml:4:11: $.schedule: a schedule cannot use the computed group 'fleet'"
        in result.output
    )


def test_rerun_failed_runs_the_failed_computed_targets_again(
    cluster: tuple[Project, str],
) -> None:
    import re

    project, prefix = cluster
    _inventory(project, f"  apps: {{targets_from: {{cluster: db, databases: '{prefix}_app%'}}}}\n")
    project.playbook(
        WHERE.replace("here.scalar != ''", "not here.scalar.endswith('app2')"), "where.yaml"
    )
    result = project.run("run", "playbooks/where.yaml", "-t", "apps", "--forks", "2")
    assert result.exit_code == 1, result.output
    found = re.search(r"fleet run (\w+): runbook show", result.output)
    assert found, result.output
    again = project.run("run", "playbooks/where.yaml", "--rerun-failed", found.group(1))
    assert again.exit_code == 1, again.output
    assert [r["target"] for r in project.runs()[2:]] == [f"db/{prefix}_app2"]


def test_a_fleet_file_listing_no_target_runs_nothing(project: Project) -> None:
    """No check ran is never healthy: an empty fleet is an error, not a pass."""
    project.write("fleet.txt", "# nobody yet\n\n")
    _inventory(project, "  fleet: {targets_from: {file: fleet.txt}}\n")
    project.playbook(WHERE, "where.yaml")
    result = project.run("run", "playbooks/where.yaml", "-t", "fleet")
    assert result.exit_code == 2, result.output
    assert "group 'fleet': fleet.txt lists no target" in result.output


def test_a_database_named_to_move_the_cursor_is_refused_and_shown_not_obeyed(
    project: Project, pg_server: PgServer
) -> None:
    prefix = f"e{uuid.uuid4().hex[:8]}"
    hostile = f"{prefix}_app\x1b[2J\x1b]0;pwned\x07\u202e"
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(hostile)))
    try:
        project.playbook(WHERE, "where.yaml")
        _inventory(
            project, f"  apps: {{targets_from: {{cluster: db, databases: '{prefix}\\_app%'}}}}\n"
        )
        result = project.run("run", "playbooks/where.yaml", "-t", "apps")
        assert result.exit_code == 2
        assert "\x1b" not in result.output and "\u202e" not in result.output
        assert "unprintable name" in result.output and "\\x1b[2J" in result.output
        assert project.runs() == []
    finally:
        pg_server.drop_database(hostile)


def test_a_reason_quoting_escapes_is_shown_not_obeyed_in_lines_and_the_matrix(
    project: Project,
) -> None:
    project.write(
        "inventory.yaml",
        f"targets:\n  a: {{dsn: {project.dsn!r}}}\n  b: {{dsn: {project.dsn!r}}}\n"
        "groups:\n  both: [a, b]\n",
    )
    project.playbook(
        "name: bad\nkind: check\nsteps:\n"
        "  - name: cast\n    query: SELECT (chr(27) || '[2J' || chr(7))::int AS n\n",
        "bad.yaml",
    )
    result = project.run("run", "playbooks/bad.yaml", "-t", "both")
    assert result.exit_code == 3
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "\\x1b[2J" in result.output  # the server's message, written out
    fleet_id = result.output.split("runbook show ")[-1].split()[0]
    shown = project.run("show", fleet_id)
    assert "\x1b" not in shown.output
