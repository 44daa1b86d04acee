from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from runbook.cli import main

from .conftest import REPO, Project


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


INVENTORY = "targets:\n  db: {dsn: embedded}\n"
GOOD = """name: good
kind: check
vars: {limit: 5}
steps:
  - name: Count
    query: SELECT count(*) AS n FROM pg_class LIMIT {{ limit }}
    register: c
    gate: {that: c.scalar > 0, severity: WARNING, message: "only {{ c.scalar }}"}
  - name: Set
    set: {doubled: "{{ c.scalar * 2 }}"}
  - name: Use both
    when: doubled | int > 0
    query: SELECT {{ doubled }}::int
"""


def test_bundled_files_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("RUNBOOK_INVENTORY", raising=False)
    result = CliRunner().invoke(main, ["validate"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "valid" in result.stderr


def test_valid_project_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "inventory.yaml", INVENTORY)
    write(tmp_path / "playbooks" / "good.yaml", GOOD)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["validate"])
    assert result.exit_code == 0, result.output
    assert "2 file(s) valid" in result.stderr


def test_folder_is_searched_recursively_and_all_problems_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "inventory.yaml", INVENTORY)
    write(
        tmp_path / "playbooks" / "a" / "b" / "one.yaml", GOOD.replace("register: c", "regster: c")
    )
    write(
        tmp_path / "playbooks" / "two.yml",
        "name: two\nkind: check\nbogus: 1\nsteps:\n  - name: x\n    query: SELECT 1\n    timeout: soon\n",
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["validate", "playbooks"])
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        "playbooks/a/b/one.yaml:7:5: $.steps[0].regster: unknown key 'regster' (did you mean 'register'?)",
        "playbooks/two.yml:3:1: $.bogus: unknown key 'bogus'; allowed here: approval, description, drill, escalation, "
        "kind, lock_timeout, name, objectives, on_failure, on_worker_loss, owner, run_on, schedule, secrets, steps, strategy, "
        "tags, targets, timeout, vars",
        "playbooks/two.yml:7:14: $.steps[0].timeout: 'soon' is not valid; expected a duration: a number of seconds, "
        "or a string such as 500ms, 30s, 5m, 1h, 2h30m, 1d; at most 7 days (604800 seconds).",
    ]
    assert "3 problem(s) in 2 file(s)" in result.stderr


def test_json_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "inventory.yaml", INVENTORY)
    bad = write(
        tmp_path / "p.yaml",
        "name: p\nkind: check\nsteps:\n  - name: a\n    query: SELECT {{ x }}\n",
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["validate", "--format", "json", str(bad)])
    assert result.exit_code == 2
    assert json.loads(result.stdout) == [
        {
            "path": "p.yaml",
            "line": 5,
            "col": 12,
            "pointer": "$.steps[0].query",
            "message": "'x' is undefined: not a variable of the playbook or its targets, and no step registers it",
            "code": "undefined",
        }
    ]


def test_include_with_vars_and_registers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "inventory.yaml", INVENTORY)
    write(
        tmp_path / "inc.yaml",
        "name: inc\nkind: check\nvars: {table: null}\nsteps:\n"
        "  - name: n\n    query: SELECT count(*) FROM {{ table | ident }}\n    register: counted\n",
    )
    write(
        tmp_path / "main.yaml",
        "name: main\nkind: check\nsteps:\n"
        "  - name: inc\n    include: inc.yaml\n    vars: {table: pg_class}\n"
        "  - name: after\n    gate: {that: counted.scalar > 0}\n"
        "  - name: bad inc\n    include: inc.yaml\n",
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["validate", "main.yaml"])
    assert result.stdout.splitlines() == [
        "main.yaml:10:14: $.steps[2].include: included playbook needs variable 'table'; give it in this step's vars"
    ]


def test_include_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "inventory.yaml", INVENTORY)
    write(tmp_path / "a.yaml", "name: a\nkind: check\nsteps:\n  - name: b\n    include: b.yaml\n")
    write(tmp_path / "b.yaml", "name: b\nkind: check\nsteps:\n  - name: a\n    include: a.yaml\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["validate", "a.yaml"])
    assert result.exit_code == 2
    assert "include cycle" in result.stdout


def test_rollback_steps_see_the_register_of_their_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "inventory.yaml", INVENTORY)
    write(
        tmp_path / "p.yaml",
        """name: p
kind: emergency
steps:
  - name: Capture the definition
    query: SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'c'
    register: saved
  - name: Drop it
    sql: ALTER TABLE t DROP CONSTRAINT c
    register: dropped
    rollback:
      - name: Re-create it
        sql: ALTER TABLE t ADD CONSTRAINT c {{ saved.scalar | literal }}
        when: dropped.rowcount is defined
""",
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["validate", "p.yaml"])
    assert result.exit_code == 0, result.output


def test_misspelt_key_via_the_installed_command(tmp_path: Path) -> None:
    write(tmp_path / "inventory.yaml", INVENTORY)
    write(
        tmp_path / "p.yaml",
        "name: p\nkind: check\nsteps:\n  - name: a\n    query: SELECT 1\n    regster: r\n",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "runbook", "validate", "p.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert (
        proc.stdout
        == "p.yaml:6:5: $.steps[0].regster: unknown key 'regster' (did you mean 'register'?)\n"
    )
    assert "Traceback" not in proc.stderr


def test_missing_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["validate", "nope.yaml"])
    assert result.exit_code == 2
    assert result.stdout == "nope.yaml:1:1: no such file or folder\n"


def test_version_and_help() -> None:
    assert CliRunner().invoke(main, ["--version"]).stdout.startswith("runbook, version ")
    help_text = CliRunner().invoke(main, ["--help"]).stdout
    assert "validate" in help_text and "Exit codes" in help_text


def test_completion_script() -> None:
    result = CliRunner().invoke(main, ["completion", "bash"])
    assert result.exit_code == 0 and "_RUNBOOK_COMPLETE" in result.stdout


def test_included_steps_are_checked_with_the_names_they_see_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "inventory.yaml", INVENTORY)
    write(
        tmp_path / "playbooks" / "main.yaml",
        "name: main\nkind: check\nvars: {limit: 5}\nsteps:\n"
        "  - name: Count\n    query: SELECT 1 AS n\n    register: counted\n"
        "  - name: Shared\n    include: shared.yaml\n    vars: {label: x}\n",
    )
    write(
        tmp_path / "playbooks" / "shared.yaml",
        "name: shared\nkind: check\nvars: {label: null}\nsteps:\n"
        "  - name: Uses what the includer defined\n"
        "    query: SELECT {{ counted.scalar }} + {{ limit }} AS n, {{ label }} AS l\n"
        "  - name: Uses a name nobody defines\n"
        "    query: SELECT {{ nobody_defines_this }} AS n\n",
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["validate", "playbooks/main.yaml"])
    assert result.exit_code == 2, result.output
    assert result.stdout.splitlines() == [
        "playbooks/shared.yaml:8:12: $.steps[1].query: 'nobody_defines_this' is undefined: "
        "not a variable of the playbook or its targets, and no step registers it"
    ]


def test_a_check_playbook_may_not_end_its_read_only_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "escape.sql").write_text("SELECT 1;\nCOMMIT;\nDELETE FROM t;\n")
    (tmp_path / "check.yaml").write_text(
        """name: escape
kind: check
steps:
  - name: Case, not end
    query: SELECT CASE WHEN true THEN 'COMMIT' END AS word -- BEGIN; END
  - name: Ends it
    sql: "SET default_transaction_read_only = off; COMMIT; DELETE FROM t"
    writes: false
  - name: Read write
    query: BEGIN READ WRITE
  - name: From a file
    sql_file: escape.sql
    writes: false
"""
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["validate", "check.yaml"])
    assert result.exit_code == 2
    found = [line for line in result.output.splitlines() if "read-only transaction" in line]
    assert [line.split(": ")[0] for line in found] == [
        "check.yaml:7:10",
        "check.yaml:10:12",
        "check.yaml:12:15",
    ]
    assert "`SET default_transaction_read_only = off`" in found[0]
    assert "`BEGIN READ WRITE`" in found[1]
    assert "`COMMIT`" in found[2]


# --- includes stay inside the project, and never show what a file holds ------

SECRET = "root:$6$s3cr3tHASH:19000:0:99999:7:::"
INCLUDER = """name: inc
kind: change
steps:
  - name: Delete one
    sql: DELETE FROM nt WHERE id = 1
  - name: The other part
    include: {path}
"""


def _nt(project: Project) -> None:
    import psycopg

    with psycopg.connect(project.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS nt")
        conn.execute("CREATE TABLE nt (id int)")
        conn.execute("INSERT INTO nt SELECT generate_series(1, 3)")


def _untouched(project: Project) -> bool:
    import psycopg

    with psycopg.connect(project.dsn) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM nt ORDER BY id")] == [1, 2, 3]


def _refused(project: Project, playbook: Path, expected: str, *, secret: str = SECRET) -> None:
    for command in ("validate", "run"):
        result = project.run(command, str(playbook))
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert expected in result.output, result.output
        assert secret not in result.output and "s3cr3t" not in result.output
    assert _untouched(project)


def test_an_include_outside_the_project_is_refused_unread(
    project: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _nt(project)
    outside = tmp_path_factory.mktemp("etc") / "shadow"
    outside.write_text(f"{SECRET}\nbin:*:19000:0:99999:7:::\n")
    depth = len(project.root.parts) + 2
    relative = "../" * depth + str(outside).lstrip("/")
    playbook = project.playbook(INCLUDER.format(path=relative), "inc.yaml")
    _refused(
        project,
        playbook,
        f"playbooks/inc.yaml:7:14: $.steps[1].include: include '{relative}' points outside the project",
    )


def test_an_include_symlinked_outside_the_project_is_refused(
    project: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import os

    _nt(project)
    outside = tmp_path_factory.mktemp("etc") / "shadow.yaml"
    outside.write_text(
        f"name: x\nkind: change\nsteps: [{{name: s, sql: 'DELETE FROM nt'}}]\n# {SECRET}\n"
    )
    (project.root / "playbooks").mkdir(exist_ok=True)
    os.symlink(outside, project.root / "playbooks" / "part.yaml")
    playbook = project.playbook(INCLUDER.format(path="part.yaml"), "inc.yaml")
    _refused(
        project, playbook, "include 'part.yaml' points outside the project (symlinks resolved)"
    )


INVALID_INCLUDES = {
    "an inventory": "targets:\n  prod:\n    dsn: postgresql://app@db/prod\n    password: s3cr3t-pw\n",
    "yaml syntax": "name: x\nkind: change\npassword: [s3cr3t, {\n",
    "a tab": "name: x\nsteps:\n\t- s3cr3t\n",
    "a bad value": "name: x\nkind: s3cr3t-kind\nsteps:\n  - {name: a, query: SELECT 1}\n",
    "a wrong type": "name: x\nkind: change\nsteps:\n  - {name: a, query: SELECT 1, retries: s3cr3t}\n",
    "a duplicate key": "s3cr3t: 1\ns3cr3t: 2\n",
    "a bad tag": "name: !s3cr3t x\n",
}


@pytest.mark.parametrize("case", sorted(INVALID_INCLUDES))
def test_an_invalid_include_is_reported_without_its_content(project: Project, case: str) -> None:
    _nt(project)
    project.playbook(INVALID_INCLUDES[case], "part.yaml")
    playbook = project.playbook(INCLUDER.format(path="part.yaml"), "inc.yaml")
    _refused(
        project,
        playbook,
        "playbooks/inc.yaml:7:14: $.steps[1].include: included playbook 'part.yaml' is invalid",
    )
    # Named on the command line, the file is the user's to see in full.
    result = project.run("validate", str(project.root / "playbooks" / "part.yaml"))
    assert result.exit_code == 2 and "playbooks/part.yaml:" in result.output


def test_includes_of_a_symlinked_playbooks_folder_stay_usable(
    project: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import os

    shared = tmp_path_factory.mktemp("shared")
    (shared / "part.yaml").write_text(
        "name: part\nkind: check\nsteps:\n  - {name: a, query: SELECT 1}\n"
    )
    (shared / "main.yaml").write_text(
        INCLUDER.format(path="part.yaml").replace("DELETE FROM nt WHERE id = 1", "SELECT 1")
    )
    os.symlink(shared, project.root / "playbooks")
    result = project.run("validate", "playbooks/main.yaml")
    assert result.exit_code == 0, result.output
    result = project.run("run", "playbooks/main.yaml")
    assert result.exit_code == 0, result.output


def test_a_misspelt_action_is_named_with_a_guess(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text(
        "name: t\nkind: check\nsteps:\n  - name: a\n    querry: SELECT 1\n"
    )
    result = CliRunner().invoke(main, ["validate", "p.yaml"])
    assert result.exit_code == 2
    assert (
        "p.yaml:5:5: $.steps[0].querry: unknown key 'querry' (did you mean 'query'?)"
        in result.stdout
    )
    assert "no action" not in result.stdout


def test_nothing_to_validate_is_not_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["validate", "empty"])
    assert result.exit_code == 2
    assert "empty:1:1: no playbooks here" in result.stdout
    result = CliRunner().invoke(main, ["validate"])
    assert result.exit_code == 2 and "nothing to validate" in result.stdout


def test_meaning_problems_come_with_shape_problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "q.yaml").write_text(
        "name: t\nkind: check\nsteps:\n  - name: a\n    querry: SELECT 1\n    register: r\n"
        "  - name: b\n    query: SELECT {{ r.scalar }} + {{ nope }}\n"
        "    gate: {that: r.scalar > 0, severity: CRITCAL}\n"
    )
    result = CliRunner().invoke(main, ["validate", "q.yaml"])
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines[0].startswith("q.yaml:5:5: $.steps[0].querry: unknown key")
    assert lines[1].startswith("q.yaml:8:12: $.steps[1].query: 'nope' is undefined")
    assert "unknown severity 'CRITCAL'" in lines[2]
    assert not any("'r'" in line for line in lines)  # the faulty step's register is assumed
    # A problem outside the steps: the rest cannot be trusted, only it is reported.
    (tmp_path / "q.yaml").write_text(
        "name: t\nkind: chek\nsteps:\n  - name: b\n    query: SELECT {{ nope }}\n"
    )
    result = CliRunner().invoke(main, ["validate", "q.yaml"])
    assert result.exit_code == 2 and "nope" not in result.stdout
