"""Standing authorizations and a run's consent in the journal, on both backends:
recorded as events, mirrored into a table that `journal verify` replays."""

from __future__ import annotations

import sqlite3

import psycopg

from tests.conftest import Project

INVENTORY = """targets:
  db:
    dsn: {dsn!r}
    protected: true
default_target: db
"""

BOOK = """name: fix
kind: change
steps:
  - name: make
    sql: CREATE TABLE IF NOT EXISTS auth_t (n int)
"""


def _granted(project: Project) -> str:
    project.write("inventory.yaml", INVENTORY.format(dsn=project.dsn))
    project.playbook(BOOK)
    result = project.run("authorize", "playbooks/p.yaml", "-t", "db", "--reason", "nightly")
    assert result.exit_code == 0, result.output
    return result.output.split(": ")[1].strip()


def test_grant_revoke_and_consent_verify(project: Project) -> None:
    auth_id = _granted(project)
    ran = project.run("run", "playbooks/p.yaml", "--yes", "--confirm-target", "db")
    assert ran.exit_code == 0, ran.output
    assert project.run("authorize", "playbooks/p.yaml", "--revoke").exit_code == 0
    journal = project.journal()
    try:
        [row] = journal.authorizations("fix", "db")
        assert row.id == auth_id and row.reason == "nightly"
        assert row.granted_by == "tester" and row.revoked_by == "tester"
        assert journal.verify() == []
    finally:
        journal.close()
    shown = project.run("show", project.last_run()["id"])
    assert "db confirmed (--yes --confirm-target by tester)" in shown.output
    verified = project.run("journal", "verify")
    assert verified.exit_code == 0, verified.output


def test_an_authorization_edited_behind_the_journals_back_is_caught(project: Project) -> None:
    _granted(project)
    # Someone with write access to the table un-revokes or re-points a grant
    # without going through the journal: verify replays the events and sees it.
    if project.journal_dsn is None:
        db = sqlite3.connect(project.root / ".runbook" / "journal.sqlite")
        db.execute("UPDATE authorizations SET digest = 'forged'")
        db.commit()
        db.close()
    else:
        with psycopg.connect(project.journal_dsn) as conn:
            conn.execute("UPDATE runbook.authorizations SET digest = 'forged'")
    verified = project.run("journal", "verify")
    assert verified.exit_code == 1, verified.output
    assert "authorizations" in verified.stdout
