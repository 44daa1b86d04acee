"""Four eyes, end to end with real OS users: a run that needs an approval
parks (exit 5) without a terminal, its operator cannot approve it, someone
else can, `resume` continues it; a denial refuses it (exit 4); a quorum needs
different people; a changed plan voids an approval; break-glass is journaled
and notified; SSH signatures are verified against allowed_signers."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import Project
from tests.drill.run_test import as_user

INVENTORY = """targets:
  db:
    dsn: {dsn!r}
    protected: true
default_target: db
people:
  dbas: [rbapprove1, rbapprove2]
{signers}channels:
  log: {{type: file, path: notifications.jsonl}}
policies:
  oncall:
    severities:
      CRITICAL:
        levels:
          - {{after: 0m, notify: [log]}}
"""

EMERGENCY = """name: stop-the-bleeding
kind: emergency
escalation: oncall
{approval}steps:
  - name: fix
    sql: CREATE TABLE approved_t (n int)
"""

USERS = ("rbapprove1", "rbapprove2")


@pytest.fixture(scope="session")
def users() -> tuple[str, ...]:
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("needs root and useradd to make real OS users")
    for name in USERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--no-create-home", name], check=True)
    return USERS


def setup(project: Project, approval: str = "", signers: str = "") -> None:
    project.write("inventory.yaml", INVENTORY.format(dsn=project.dsn, signers=signers))
    project.playbook(EMERGENCY.format(approval=approval), "e.yaml")


def shared(project: Project) -> None:
    """Let the other users read and write the project's journal (a team would
    share a PostgreSQL journal instead), and reach it: every folder above it
    that this test run made (pytest makes some of them 700)."""
    for folder in project.root.parents:
        if folder == Path(tempfile.gettempdir()) or not folder.is_relative_to(
            tempfile.gettempdir()
        ):
            break
        folder.chmod(folder.stat().st_mode | 0o755)
    for path in [project.root, *project.root.rglob("*")]:
        if path.is_file() and path.parent.name == "keys":
            continue  # an SSH key readable by others is refused by ssh-keygen
        path.chmod(0o777 if path.is_dir() else 0o666)


def as_(project: Project, user: str, *args: str) -> subprocess.CompletedProcess[str]:
    shared(project)
    return subprocess.run(
        as_user(user, *args), cwd=project.root, capture_output=True, text=True, check=False
    )


def run(project: Project, *extra: str) -> Any:
    return project.run("run", "playbooks/e.yaml", "--yes", "--confirm-target", "db", *extra)


def resume(project: Project, run_id: str, *extra: str) -> Any:
    return project.run("resume", run_id, "--yes", "--confirm-target", "db", *extra)


def table_exists(project: Project) -> bool:
    with psycopg.connect(project.dsn) as conn:
        found = conn.execute("SELECT to_regclass('approved_t') IS NOT NULL").fetchone()
    return bool(found and found[0])


def requests(project: Project) -> list[dict[str, Any]]:
    return list(json.loads(project.run("approvals", "--all", "--format", "json").output))


def test_an_emergency_on_a_protected_target_parks_until_someone_else_approves(
    project: Project, users: tuple[str, ...]
) -> None:
    setup(project)
    parked = run(project)
    assert parked.exit_code == 5, parked.output
    run_id = project.last_run()["id"]
    assert project.last_run()["status"] == "awaiting_approval"
    assert not table_exists(project)
    [request] = requests(project)
    assert (request["status"], request["run_id"], request["requested_os_user"]) == (
        "pending",
        run_id,
        "root",
    )
    # The operator cannot approve their own run.
    self_approved = project.run("approve", run_id)
    assert self_approved.exit_code == 4 and "someone else approves it" in self_approved.output
    # Resuming before the approval parks it again, nothing run.
    assert resume(project, run_id).exit_code == 5
    assert not table_exists(project)
    approved = as_(project, users[0], "approve", run_id, "--comment", "go")
    assert approved.returncode == 0, approved.stderr
    assert f"approved (approved by {users[0]})" in approved.stdout
    done = resume(project, project.last_run()["id"])
    assert done.exit_code == 0, done.output
    assert table_exists(project)
    [request] = requests(project)
    assert request["status"] == "approved" and request["votes"][0]["by"] == users[0]


def test_a_denial_refuses_the_run(project: Project, users: tuple[str, ...]) -> None:
    setup(project)
    assert run(project).exit_code == 5
    run_id = project.last_run()["id"]
    denied = as_(project, users[1], "deny", run_id, "--reason", "not during the audit")
    assert denied.returncode == 0, denied.stderr
    refused = resume(project, run_id)
    assert refused.exit_code == 4, refused.output
    assert not table_exists(project)


def test_a_quorum_of_two_from_a_group_of_people(project: Project, users: tuple[str, ...]) -> None:
    setup(project, "approval: {quorum: 2, approvers: [dbas]}\n")
    assert run(project).exit_code == 5
    run_id = project.last_run()["id"]
    first = as_(project, users[0], "approve", run_id)
    assert first.returncode == 0 and "1 of 2, waiting for more" in first.stdout
    again = as_(project, users[0], "approve", run_id)
    assert again.returncode == 2 and "already voted" in again.stderr
    assert resume(project, run_id).exit_code == 5  # one is not a quorum
    second = as_(project, users[1], "approve", run_id)
    assert second.returncode == 0 and "approved" in second.stdout, second.stderr
    assert resume(project, project.last_run()["id"]).exit_code == 0
    assert table_exists(project)


def test_someone_not_among_the_approvers_is_refused(
    project: Project, users: tuple[str, ...]
) -> None:
    setup(project, f"approval: {{approvers: [{users[0]}]}}\n")
    assert run(project).exit_code == 5
    refused = as_(project, users[1], "approve", project.last_run()["id"])
    assert refused.returncode == 4 and "may not approve" in refused.stderr


def test_a_changed_plan_voids_the_approval(project: Project, users: tuple[str, ...]) -> None:
    setup(project)
    assert run(project).exit_code == 5
    run_id = project.last_run()["id"]
    assert as_(project, users[0], "approve", run_id).returncode == 0
    # The playbook changes after the approval: what was approved is not what would run.
    path = project.root / "playbooks" / "e.yaml"
    path.write_text(path.read_text().replace("approved_t (n int)", "approved_t (n bigint)"))
    again = resume(project, run_id, "--force")
    assert again.exit_code == 5, again.output
    statuses = sorted(r["status"] for r in requests(project))
    assert statuses == ["pending", "void"]
    assert not table_exists(project)


def test_break_glass_is_journaled_and_notified(project: Project) -> None:
    setup(project, "approval: {break_glass: {allowed: true}}\n")
    result = run(project, "--break-glass", "the disk is full, nobody answers")
    assert result.exit_code == 0, result.output
    assert table_exists(project)
    [request] = requests(project)
    assert request["status"] == "broken" and "the disk is full" in request["reason"]
    sent = (project.root / "notifications.jsonl").read_text()
    assert "break-glass" in sent and "review it" in sent


def test_break_glass_where_the_policy_does_not_allow_it(project: Project) -> None:
    setup(project)
    result = run(project, "--break-glass", "in a hurry")
    assert result.exit_code == 4 and "no break-glass" in result.output
    assert not table_exists(project)


def test_ssh_signatures_are_verified_against_allowed_signers(
    project: Project, users: tuple[str, ...]
) -> None:
    keys = project.root / "keys"
    keys.mkdir()
    shared(project)  # the folders above it too: the approver makes the keys there
    for name in ("good", "stranger"):
        made = subprocess.run(
            ["runuser", "-u", users[0], "--", "ssh-keygen", "-q", "-t", "ed25519", "-N", "",
             "-f", str(keys / name)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
    public = (keys / "good.pub").read_text().split()
    allowed = project.root / "allowed_signers"
    allowed.write_text(
        f'{users[0]}@example namespaces="runbook-approval" {public[0]} {public[1]}\n'
    )
    setup(project, signers="approvers: {allowed_signers: allowed_signers}\n")
    assert run(project).exit_code == 5
    run_id = project.last_run()["id"]
    stranger = as_(project, users[0], "approve", run_id, "--sign", str(keys / "stranger"))
    assert stranger.returncode == 4 and "not in approvers.allowed_signers" in stranger.stderr
    good = as_(project, users[0], "approve", run_id, "--sign", str(keys / "good"))
    assert good.returncode == 0, good.stderr
    [request] = requests(project)
    [vote] = request["votes"]
    assert vote["principal"] == f"{users[0]}@example" and "BEGIN SSH SIGNATURE" in vote["signature"]


def test_an_approval_is_checked_before_anything_connects_for_several_targets(
    project: Project,
) -> None:
    setup(project)
    text = (project.root / "inventory.yaml").read_text()
    project.write(
        "inventory.yaml",
        text.replace("default_target: db", f"  db2:\n    dsn: {project.dsn!r}\n    protected: true\ngroups:\n  both: [db, db2]\ndefault_target: db"),
    )  # fmt: skip
    result = project.run(
        "run", "playbooks/e.yaml", "-t", "both", "--yes", "--confirm-target", "both",
    )  # fmt: skip
    assert result.exit_code == 2 and "one target at a time" in result.output


@pytest.mark.timeout(240)  # above Terminal.wait's 90 s: a hang shows its stacks
def test_at_a_terminal_the_run_waits_and_goes_on_once_approved(
    project: Project, users: tuple[str, ...]
) -> None:
    from tests.terminal import Terminal

    setup(project)
    term = Terminal(["run", "playbooks/e.yaml"], project.root, {"RUNBOOK_OPERATOR": "alice"})
    term.expect(r"Type 'db' to go on")
    term.type("db")
    term.expect(r"needs an approval .*runbook approve (\w+)")
    run_id = project.last_run()["id"]
    assert project.last_run()["status"] == "running" and not table_exists(project)
    assert as_(project, users[1], "approve", run_id).returncode == 0
    assert term.wait() == 0, term.text
    assert table_exists(project)
    assert project.last_run()["status"] == "ok"


STEPWISE = """name: stepwise
kind: change
vars: {{table: approved_t}}
steps:
  - name: look first
    query: SELECT 1 AS n
  - name: make the table
    sql: CREATE TABLE {{{{ table | ident }}}} (n int)
    approval: {{}}
"""


def test_a_step_level_approval_is_asked_when_the_run_reaches_the_step(
    project: Project, users: tuple[str, ...]
) -> None:
    setup(project)
    project.playbook(STEPWISE.format(), "s.yaml")
    parked = project.run("run", "playbooks/s.yaml", "--yes", "--confirm-target", "db")
    assert parked.exit_code == 5, parked.output
    first = project.last_run()
    assert [s["status"] for s in first["steps"]] == ["ok", "awaiting_approval"]
    [request] = requests(project)
    assert request["step"] is not None and request["status"] == "pending"
    assert as_(project, users[0], "approve", first["id"]).returncode == 0
    done = resume(project, first["id"])
    assert done.exit_code == 0, done.output
    assert table_exists(project)
    second = project.last_run()
    steps = {s["name"]: s for s in second["steps"]}
    assert steps["make the table"]["status"] == "ok"
    assert steps["look first"]["status"] != "ok", steps  # done before: not run again


def test_a_step_approval_is_bound_to_its_rendered_statement(
    project: Project, users: tuple[str, ...]
) -> None:
    setup(project)
    project.playbook(STEPWISE.format(), "s.yaml")
    assert project.run("run", "playbooks/s.yaml", "--yes", "--confirm-target", "db").exit_code == 5
    run_id = project.last_run()["id"]
    assert as_(project, users[0], "approve", run_id).returncode == 0
    # The same step, another table: not what was approved.
    again = resume(project, run_id, "-e", "table=other_t")
    assert again.exit_code == 5, again.output
    assert sorted(r["status"] for r in requests(project)) == ["pending", "void"]
    assert not table_exists(project)


@pytest.mark.timeout(240)  # above Terminal.wait's 90 s: a hang shows its stacks
@pytest.mark.parametrize(("on_timeout", "code"), [("halt", 4), ("escalate", 5)])
def test_an_approval_not_given_in_time(
    project: Project, users: tuple[str, ...], on_timeout: str, code: int
) -> None:
    from tests.terminal import Terminal

    setup(project, f"approval: {{timeout: 2s, on_timeout: {on_timeout}}}\n")
    term = Terminal(["run", "playbooks/e.yaml"], project.root, {"RUNBOOK_OPERATOR": "alice"})
    term.expect(r"Type 'db' to go on")
    term.type("db")
    term.expect(r"needs an approval")
    assert term.wait() == code, term.text
    assert not table_exists(project)
    if on_timeout == "escalate":  # the policy was paged that an approval is awaited
        sent = (project.root / "notifications.jsonl").read_text()
        assert "awaits approval" in sent
