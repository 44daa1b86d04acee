"""Rollback: on_failure: rollback, and `runbook rollback RUN_ID`."""

from __future__ import annotations

import psycopg

from .conftest import Project

Conn = psycopg.Connection[tuple[object, ...]]

SCHEMA = """
CREATE TABLE panels (
    id serial PRIMARY KEY,
    barcode text NOT NULL,
    status text NOT NULL,
    CONSTRAINT panels_barcode_format CHECK (barcode ~ '^SP[0-9]{6}$'),
    CONSTRAINT panels_workflow_progression CHECK (status IN ('PENDING', 'IN_PROGRESS', 'DONE'))
);
INSERT INTO panels (barcode, status) VALUES ('SP000001', 'DONE'), ('SP000002', 'PENDING');
"""

DROP_TWO = """name: emergency-drop
kind: emergency
on_failure: rollback
vars: {table: panels}
steps:
  - name: Capture the barcode constraint
    query: SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'panels_barcode_format'
    register: barcode
  - name: Drop the barcode constraint
    sql: ALTER TABLE {{ table | ident }} DROP CONSTRAINT panels_barcode_format
    rollback:
      - name: Re-create the barcode constraint
        sql: |
          DO $rb$ BEGIN
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s', {{ table | literal }}, 'panels_barcode_format', {{ barcode.scalar | literal }});
          END $rb$
  - name: Capture the workflow constraint
    query: SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'panels_workflow_progression'
    register: workflow
  - name: Drop the workflow constraint
    sql: ALTER TABLE panels DROP CONSTRAINT panels_workflow_progression
    rollback:
      - name: Re-create the workflow constraint
        sql: |
          DO $rb$ BEGIN
            EXECUTE format('ALTER TABLE panels ADD CONSTRAINT panels_workflow_progression %s', {{ workflow.scalar | literal }});
          END $rb$
  - name: Production works without them
    query: SELECT count(*) AS n FROM panels WHERE status = 'BROKEN'
    register: broken
    gate: {that: broken.scalar > 0, severity: CRITICAL, message: "the system still fails: roll back"}
  - name: Never reached
    sql: SELECT 1
"""


def _definitions(conn: Conn) -> dict[str, str]:
    rows = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'panels'::regclass AND contype = 'c'"
    ).fetchall()
    return {str(name): str(definition) for name, definition in rows}


def test_failed_gate_restores_both_constraints(project: Project, conn: Conn) -> None:
    conn.execute(SCHEMA)
    before = _definitions(conn)
    result = project.run("run", str(project.playbook(DROP_TWO)), "--yes")
    assert result.exit_code == 1, result.output
    assert _definitions(conn) == before  # the same definitions, back in the catalog
    run = project.last_run()
    assert run["status"] == "rolled_back"
    assert "rollback: undone: step(s) 4, 2" in run["reason"]
    by_number = {s["number"]: s for s in run["steps"]}
    assert by_number["2"]["status"] == "rolled_back" and by_number["4"]["status"] == "rolled_back"
    assert by_number["5"]["status"] == "gate_failed" and by_number["6"]["status"] == "not_run"
    # Rollback steps are journaled, linked to the step they undo, in reverse order.
    undo = [
        (s["number"], s["undoes"], s["status"]) for s in run["steps"] if s["phase"] == "rollback"
    ]
    assert undo == [("4.r1", 3, "ok"), ("2.r1", 1, "ok")]
    assert project.journal().verify() == []


def test_failed_rollback_says_what_remains(project: Project, conn: Conn) -> None:
    conn.execute(SCHEMA)
    broken = DROP_TWO.replace(
        "EXECUTE format('ALTER TABLE panels ADD CONSTRAINT panels_workflow_progression %s'",
        "EXECUTE format('ALTER TABLE no_such_table ADD CONSTRAINT panels_workflow_progression %s'",
    )
    result = project.run("run", str(project.playbook(broken)), "--yes")  # an emergency asks
    assert result.exit_code == 3
    run = project.last_run()
    assert run["status"] == "rollback_failed"
    assert "rollback failed while undoing step 4 'Drop the workflow constraint'" in run["reason"]
    assert (
        "not undone: 4 'Drop the workflow constraint', 2 'Drop the barcode constraint'"
        in run["reason"]
    )
    assert set(_definitions(conn)) == set()  # nothing was restored: undoing stopped at the failure


def test_rollback_command_undoes_a_finished_run(project: Project, conn: Conn) -> None:
    conn.execute(SCHEMA)
    before = _definitions(conn)
    finished = DROP_TWO.replace("on_failure: rollback\n", "").replace(
        "broken.scalar > 0", "broken.scalar == 0"
    )
    book = project.playbook(finished)
    assert project.run("run", str(book), "--yes").exit_code == 0  # an emergency asks
    assert _definitions(conn) == {}
    run_id = project.last_run()["id"]
    refused = project.run("rollback", run_id)  # no terminal, no --yes: refused, exit 4
    assert refused.exit_code == 4 and "needs confirmation" in refused.stderr
    preview = project.run("rollback", run_id, "--check")
    assert preview.exit_code == 0, preview.output
    assert (
        "EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s', 'panels', 'panels_barcode_format', 'CHECK"
        in preview.stdout
    )
    assert _definitions(conn) == {}
    # The dry run is journaled as one, and the run it previewed is untouched.
    preview_run = project.last_run()
    assert preview_run["mode"] == "rollback-check" and preview_run["status"] == "ok"
    assert preview_run["parent_run"] == run_id
    assert {r["id"]: r for r in project.runs()}[run_id]["status"] == "ok"
    assert run_id in project.run("history").stdout
    done = project.run("rollback", run_id, "--yes")
    assert done.exit_code == 0, done.output
    assert _definitions(conn) == before, done.output
    runs = {r["id"]: r for r in project.runs()}
    assert runs[run_id]["status"] == "rolled_back"
    undo_run = project.last_run()
    assert undo_run["mode"] == "rollback" and undo_run["parent_run"] == run_id
    assert [s["undoes"] for s in undo_run["steps"]] == [3, 1]
    assert project.run("rollback", run_id, "--yes").exit_code == 2  # already rolled back


def test_steps_without_rollback_are_named(project: Project, conn: Conn) -> None:
    conn.execute("CREATE TABLE t (x int)")
    book = project.playbook(
        "name: n\nkind: change\non_failure: rollback\nsteps:\n"
        "  - {name: Insert, sql: 'INSERT INTO t VALUES (1)'}\n"
        "  - {name: Fail, gate: {that: '1 == 2'}}\n"
    )
    assert project.run("run", str(book)).exit_code == 1
    assert "no rollback steps for: 1 'Insert'" in project.last_run()["reason"]


GATE_ON_WRITE = """name: gate-on-write
kind: change
on_failure: {policy}
steps:
  - name: Insert and check its own result
    query: INSERT INTO probe VALUES (1) RETURNING x
    writes: true
    register: ins
    gate: {{that: "ins.rowcount == 0", message: the insert should not have happened}}
    rollback:
      - {{name: Take the row out again, sql: DELETE FROM probe WHERE x = 1}}
  - name: Inside a block, the failed gate takes its own change back
    transaction:
      - name: Insert in a block
        query: INSERT INTO probe VALUES (2) RETURNING x
        writes: true
        register: two
        on_failure: halt
        gate: {{that: "two.rowcount == 0"}}
    on_failure: continue
"""


def test_a_writing_step_whose_own_gate_fails_is_rolled_back(project: Project, conn: Conn) -> None:
    conn.execute("CREATE TABLE probe (x int)")
    book = project.playbook(GATE_ON_WRITE.format(policy="rollback"))
    result = project.run("run", str(book))
    assert result.exit_code == 1, result.output
    assert conn.execute("SELECT count(*) FROM probe").fetchone() == (0,)
    run = project.last_run()
    assert run["status"] == "rolled_back"
    assert "undone: step(s) 1" in run["reason"]


def test_rollback_command_undoes_a_step_whose_gate_failed(project: Project, conn: Conn) -> None:
    conn.execute("CREATE TABLE probe (x int)")
    book = project.playbook(GATE_ON_WRITE.format(policy="continue"))
    assert project.run("run", str(book)).exit_code == 1
    assert conn.execute("SELECT array_agg(x) FROM probe").fetchone() == ([1],)
    run_id = project.last_run()["id"]
    done = project.run("rollback", run_id, "--yes")
    assert done.exit_code == 0, done.output
    assert conn.execute("SELECT count(*) FROM probe").fetchone() == (0,)
    assert [s["undoes"] for s in project.last_run()["steps"]] == [0]  # step 1 only
