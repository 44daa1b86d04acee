"""Protected targets and emergencies: nothing writes until a person (or a
standing authorization) says so; who did is on the run (issue 15, items 1, 2, 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from runbook import service
from runbook.errors import ExitCode, Refused
from runbook.report import SilentReporter
from tests.conftest import Project
from tests.terminal import Terminal

INVENTORY = """targets:
  db:
    dsn: {dsn!r}
    protected: true
  other:
    dsn: {dsn!r}
groups:
  prod: [db]
default_target: db
"""

CHANGE = """name: add-row
kind: change
steps:
  - name: make
    sql: CREATE TABLE IF NOT EXISTS consent_t (n int)
  - name: insert
    sql: INSERT INTO consent_t VALUES (1)
    rollback:
      - name: remove
        sql: DELETE FROM consent_t WHERE n = 1
"""

CHECK = """name: look
kind: check
steps:
  - name: count
    query: SELECT 1 AS n
"""

EMERGENCY = """name: stop-the-bleeding
kind: emergency
steps:
  - name: fix
    sql: CREATE TABLE IF NOT EXISTS emergency_t (n int)
"""


@pytest.fixture
def protected(project: Project) -> Project:
    project.write("inventory.yaml", INVENTORY.format(dsn=project.dsn))
    project.playbook(CHANGE)
    project.playbook(CHECK, "check.yaml")
    project.playbook(EMERGENCY, "emergency.yaml")
    return project


def _table_exists(dsn: str, name: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone() == (True,)


def test_a_protected_target_without_a_terminal_needs_its_name_ahead(protected: Project) -> None:
    result = protected.run("run", "playbooks/p.yaml", "--yes")
    assert result.exit_code == ExitCode.REFUSED, result.output
    assert "protected target(s) db" in result.output
    assert "--yes --confirm-target db" in result.output
    assert not _table_exists(protected.dsn, "consent_t")  # nothing ran
    assert protected.runs() == []  # nothing started, nothing journaled as run


def test_yes_and_the_name_ahead_run_it_and_say_who(protected: Project) -> None:
    result = protected.run("run", "playbooks/p.yaml", "--yes", "--confirm-target", "db")
    assert result.exit_code == 0, result.output
    run = protected.last_run()
    assert run["consent"] == {"how": "--confirm-target", "by": "tester", "names": ["db"]}
    assert _table_exists(protected.dsn, "consent_t")


def test_the_name_ahead_without_yes_is_not_enough(protected: Project) -> None:
    result = protected.run("run", "playbooks/p.yaml", "--confirm-target", "db")
    assert result.exit_code == ExitCode.REFUSED, result.output


def test_a_wrong_name_ahead_is_invalid_input(protected: Project) -> None:
    result = protected.run("run", "playbooks/p.yaml", "--yes", "--confirm-target", "other")
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert "protected names are db" in result.output


def test_a_group_is_confirmed_by_the_groups_name(protected: Project) -> None:
    by_target = protected.run(
        "run", "playbooks/p.yaml", "-t", "prod", "--yes", "--confirm-target", "db"
    )
    assert by_target.exit_code == ExitCode.INVALID_INPUT, by_target.output
    assert "protected names are prod" in by_target.output
    by_group = protected.run(
        "run", "playbooks/p.yaml", "-t", "prod", "--yes", "--confirm-target", "prod"
    )
    assert by_group.exit_code == 0, by_group.output
    assert protected.last_run()["consent"]["names"] == ["prod"]


@pytest.mark.parametrize("flag", ["--check", "--rehearse"])
def test_dry_runs_need_no_confirmation(protected: Project, flag: str) -> None:
    result = protected.run("run", "playbooks/p.yaml", flag)
    assert result.exit_code == 0, result.output
    assert protected.last_run()["consent"] is None


def test_a_playbook_that_cannot_write_needs_none(protected: Project) -> None:
    result = protected.run("run", "playbooks/check.yaml")
    assert result.exit_code == 0, result.output


def test_an_unprotected_target_needs_none(protected: Project) -> None:
    result = protected.run("run", "playbooks/p.yaml", "-t", "other")
    assert result.exit_code == 0, result.output


def test_an_emergency_asks_even_on_an_unprotected_target(protected: Project) -> None:
    refused = protected.run("run", "playbooks/emergency.yaml", "-t", "other")
    assert refused.exit_code == ExitCode.REFUSED, refused.output
    assert "an emergency playbook" in refused.output
    assert not _table_exists(protected.dsn, "emergency_t")
    result = protected.run("run", "playbooks/emergency.yaml", "-t", "other", "--yes")
    assert result.exit_code == 0, result.output
    assert protected.last_run()["consent"] == {"how": "--yes", "by": "tester", "names": []}


def test_rollback_of_a_run_on_a_protected_target_needs_the_name_too(protected: Project) -> None:
    assert (
        protected.run("run", "playbooks/p.yaml", "--yes", "--confirm-target", "db").exit_code == 0
    )
    run_id = protected.last_run()["id"]
    refused = protected.run("rollback", run_id, "--yes")
    assert refused.exit_code == ExitCode.REFUSED, refused.output
    dry = protected.run("rollback", run_id, "--check")
    assert dry.exit_code == 0, dry.output
    done = protected.run("rollback", run_id, "--yes", "--confirm-target", "db")
    assert done.exit_code == 0, done.output


# -- runs nobody attends -------------------------------------------------------------


def _unattended(project: Project, playbook: str = "playbooks/p.yaml") -> list[Any]:
    spec = service.RunSpec(
        playbook=project.root / playbook, inventory=project.root / "inventory.yaml", attended=False
    )
    return service.run(spec, SilentReporter)


def test_an_unattended_run_needs_a_standing_authorization(protected: Project) -> None:
    with pytest.raises(Refused, match="standing authorization"):
        _unattended(protected)
    assert not _table_exists(protected.dsn, "consent_t")
    granted = protected.run("authorize", "playbooks/p.yaml", "-t", "db", "--reason", "nightly")
    assert granted.exit_code == 0, granted.output
    auth_id = granted.output.split(": ")[1].strip()
    outcomes = _unattended(protected)
    assert [o.exit_code for o in outcomes] == [0]
    consent = protected.last_run()["consent"]
    assert consent["how"] == "authorization"
    assert consent["authorizations"][0]["id"] == auth_id
    assert consent["authorizations"][0]["by"] == "tester"


@pytest.mark.parametrize("change", ["playbook", "sql_file"])
def test_an_authorization_is_void_once_anything_it_covers_changes(
    protected: Project, change: str
) -> None:
    protected.write("sql/fill.sql", "INSERT INTO consent_t VALUES (2)\n")
    protected.playbook(CHANGE + "  - name: fill\n    sql_file: fill.sql\n")
    assert protected.run("authorize", "playbooks/p.yaml", "-t", "db").exit_code == 0
    assert [o.exit_code for o in _unattended(protected)] == [0]
    if change == "playbook":
        protected.playbook(
            CHANGE.replace("VALUES (1)", "VALUES (3)") + "  - name: fill\n    sql_file: fill.sql\n"
        )
    else:
        protected.write("sql/fill.sql", "DELETE FROM consent_t\n")
    with pytest.raises(Refused, match="is void"):
        _unattended(protected)
    listed = protected.run("authorize", "--list")
    assert "void: changed since" in listed.output, listed.output


def test_a_revoked_authorization_no_longer_holds(protected: Project) -> None:
    assert protected.run("authorize", "playbooks/p.yaml", "-t", "db").exit_code == 0
    revoked = protected.run(
        "authorize", "playbooks/p.yaml", "-t", "db", "--revoke", "--reason", "done"
    )
    assert revoked.exit_code == 0 and "revoked 1" in revoked.output, revoked.output
    with pytest.raises(Refused, match="standing authorization"):
        _unattended(protected)
    listed = protected.run("authorize", "--list", "--format", "json")
    assert '"state": "revoked"' in listed.output
    assert '"revoke_reason": "done"' in listed.output


# -- a person at the terminal ---------------------------------------------------------


def _terminal(project: Project, *args: str) -> Terminal:
    return Terminal(list(args), project.root, {"RUNBOOK_OPERATOR": "alice"})


@pytest.mark.timeout(240)  # above Terminal.wait's 90 s: a hang shows its stacks
def test_typing_the_targets_name_lets_it_run(protected: Project) -> None:
    term = _terminal(protected, "run", "playbooks/p.yaml")
    term.expect(r"writes: step 2 insert \(sql; rollback available\)")
    term.expect(r"Type 'db' to go on")
    term.type("db")
    assert term.wait() == 0, term.text
    assert protected.last_run()["consent"] == {"how": "typed", "by": "alice", "names": ["db"]}


@pytest.mark.timeout(240)  # above Terminal.wait's 90 s: a hang shows its stacks
def test_a_yes_is_not_the_targets_name(protected: Project) -> None:
    term = _terminal(protected, "run", "playbooks/p.yaml", "--yes")
    term.expect(r"Type 'db' to go on")
    term.type("y")
    assert term.wait() == ExitCode.REFUSED, term.text
    assert "not confirmed; nothing ran" in term.text
    assert not _table_exists(protected.dsn, "consent_t")


@pytest.mark.timeout(240)  # above Terminal.wait's 90 s: a hang shows its stacks
def test_an_emergency_shows_its_plan_and_asks(protected: Project) -> None:
    term = _terminal(protected, "run", "playbooks/emergency.yaml", "-t", "other")
    term.expect(r"emergency playbook 'stop-the-bleeding' on other")
    term.expect(r"rollbacks: 0 of 1 writing step\(s\) can be undone")
    term.expect(r"Start\? \[y/N\]: ")
    term.type("n")
    assert term.wait() == ExitCode.REFUSED, term.text
    assert not _table_exists(protected.dsn, "emergency_t")


CONFIRMING = """name: careful
kind: change
steps:
  - name: before
    sql: CREATE TABLE IF NOT EXISTS confirm_t (n int)
  - name: ask
    confirm: Go on with the insert?
  - name: after
    sql: INSERT INTO confirm_t VALUES (1)
"""


@pytest.mark.timeout(240)  # above Terminal.wait's 90 s: a hang shows its stacks
def test_no_at_a_confirm_step_is_its_own_outcome(protected: Project) -> None:
    protected.playbook(CONFIRMING, "confirming.yaml")
    term = _terminal(protected, "run", "playbooks/confirming.yaml", "-t", "other")
    # The whole question, hint included, is shown once and not drawn over.
    term.expect(r"Go on with the insert\? \[y/N\]: ")
    term.type("n")
    assert term.wait() == ExitCode.REFUSED, term.text
    assert "error: Abort" not in term.text
    run = protected.last_run()
    assert run["status"] == "declined"
    assert [s["status"] for s in run["steps"]] == ["ok", "declined", "not_run"]
    # Declined is unfinished: resume asks again, and this time the answer is yes.
    again = _terminal(protected, "resume", run["id"])
    again.expect(r"Go on with the insert\? \[y/N\]: ")
    again.type("y")
    assert again.wait() == 0, again.text


@pytest.mark.timeout(240)  # above Terminal.wait's 90 s: a hang shows its stacks
def test_ctrl_c_at_a_confirm_step_is_an_interruption(protected: Project) -> None:
    protected.playbook(CONFIRMING, "confirming.yaml")
    term = _terminal(protected, "run", "playbooks/confirming.yaml", "-t", "other")
    term.expect(r"Go on with the insert\? \[y/N\]: ")
    term.ctrl_c()
    assert term.wait() == ExitCode.INTERRUPTED, term.text
    assert "Abort" not in term.text
    assert protected.last_run()["status"] == "interrupted"


@pytest.mark.timeout(240)  # above Terminal.wait's 90 s: a hang shows its stacks
def test_ctrl_c_at_the_targets_name_is_an_interruption(protected: Project) -> None:
    term = _terminal(protected, "run", "playbooks/p.yaml")
    term.expect(r"Type 'db' to go on")
    term.ctrl_c()
    assert term.wait() == ExitCode.INTERRUPTED, term.text
    assert protected.runs() == []


def test_declined_is_exit_4_and_worse_than_a_gate(tmp_path: Path) -> None:
    from runbook.outcome import RunOutcome, RunStatus

    def outcome(status: RunStatus) -> RunOutcome:
        return RunOutcome(run_id="r", playbook="p", target="t", mode="run", status=status, steps=[])

    both = [outcome(RunStatus.GATE_FAILED), outcome(RunStatus.DECLINED)]
    assert service.exit_code(both, "default") == ExitCode.REFUSED
    worse = [outcome(RunStatus.DECLINED), outcome(RunStatus.FAILED)]
    assert service.exit_code(worse, "default") == ExitCode.STEP_ERROR
