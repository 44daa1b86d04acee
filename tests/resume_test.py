"""runbook resume: continue a run from its first unfinished step."""

from __future__ import annotations

import psycopg

from runbook.journal import recorder

from .conftest import Project

Conn = psycopg.Connection[tuple[object, ...]]

PLAYBOOK = """name: resumable
kind: change
vars: {needed: 2}
steps:
  - name: Remember a value
    query: SELECT 41 AS v
    register: first
  - name: One
    sql: INSERT INTO effects VALUES ('one')
  - name: Set
    set: {label: "{{ first.scalar + 1 }}"}
  - name: Enough rows?
    query: SELECT count(*) AS n FROM ready
    register: ready
    gate: {that: ready.scalar >= needed, message: "only {{ ready.scalar }} ready"}
  - name: Two uses what was registered before the halt
    sql: INSERT INTO effects VALUES ('two-' || {{ first.scalar }}::text || '-' || {{ label }}::text)
  - name: Three
    sql: INSERT INTO effects VALUES ('three')
"""


def _effects(conn: Conn) -> list[str]:
    return [str(r[0]) for r in conn.execute("SELECT what FROM effects ORDER BY what").fetchall()]


def _setup(conn: Conn) -> None:
    conn.execute("CREATE TABLE effects (what text NOT NULL)")
    conn.execute("CREATE TABLE ready (x int)")
    conn.execute("INSERT INTO ready VALUES (1)")


def test_resume_after_a_gate_halt(project: Project, conn: Conn) -> None:
    _setup(conn)
    book = project.playbook(PLAYBOOK)
    assert project.run("run", str(book)).exit_code == 1
    halted = project.last_run()
    assert _effects(conn) == ["one"]
    refused = project.run("resume", halted["id"][:8])
    assert refused.exit_code == 1  # still not ready: halts again at the same gate
    conn.execute("INSERT INTO ready VALUES (2)")
    result = project.run("resume", project.last_run()["id"])
    assert result.exit_code == 0, result.output
    assert _effects(conn) == ["one", "three", "two-41-42"]  # each exactly once
    resumed = project.last_run()
    assert resumed["mode"] == "resume"
    statuses = [(s["number"], s["status"]) for s in resumed["steps"]]
    assert statuses == [
        ("1", "skipped"),
        ("2", "skipped"),
        ("3", "skipped"),
        ("4", "ok"),
        ("5", "ok"),
        ("6", "ok"),
    ]
    assert resumed["steps"][0]["reason"] == f"done in run {halted['id']}"
    nothing = project.run("resume", resumed["id"])
    assert nothing.exit_code == 2 and "nothing to resume" in nothing.stderr


def test_resume_refuses_a_changed_playbook_unless_forced(project: Project, conn: Conn) -> None:
    _setup(conn)
    book = project.playbook(PLAYBOOK)
    assert project.run("run", str(book)).exit_code == 1
    run_id = project.last_run()["id"]
    book.write_text(PLAYBOOK.replace("needed: 2", "needed: 1"))
    refused = project.run("resume", run_id)
    assert refused.exit_code == 2
    assert "changed since run" in refused.stderr and "--force" in refused.stderr
    forced = project.run("resume", run_id, "--force")
    assert forced.exit_code == 0, forced.output
    assert project.last_run()["forced"].startswith(f"{book} changed since run {run_id}")
    assert _effects(conn) == ["one", "three", "two-41-42"]


def test_resume_needs_secrets_again(project: Project, conn: Conn) -> None:
    conn.execute("CREATE TABLE effects (what text NOT NULL)")
    book = project.playbook(
        "name: s\nkind: change\nsecrets: [pin]\nvars: {pin: null, go: false}\nsteps:\n"
        "  - {name: Gate, gate: {that: go}}\n"
        "  - {name: Use, sql: 'INSERT INTO effects VALUES ({{ pin }})'}\n"
    )
    assert project.run("run", str(book), "-e", "pin=s3cret-pin", "-e", "go=false").exit_code == 1
    run_id = project.last_run()["id"]
    missing = project.run("resume", run_id)
    assert missing.exit_code == 2 and "needs a value for pin" in missing.stderr
    ok = project.run("resume", run_id, "-e", "pin=s3cret-pin", "-e", "go=true")
    assert ok.exit_code == 0, ok.output
    assert _effects(conn) == ["s3cret-pin"]


def test_step_committed_before_a_crash_is_not_run_again(project: Project, conn: Conn) -> None:
    """The run died after step 2 committed but before its end was recorded."""
    _setup(conn)
    book = project.playbook(PLAYBOOK)
    assert project.run("run", str(book)).exit_code == 1  # halts at step 4
    run = project.last_run()
    two = run["steps"][1]
    assert two["name"] == "One" and two["status"] == "ok" and two["xid"]
    # Rewind the record to the moment between COMMIT and the end record, process gone.
    journal = project.journal()
    at = "2026-01-01T00:00:00.000Z"
    journal.append(
        [
            (
                at,
                run["id"],
                "test.forge",
                {
                    "table": "runs",
                    "op": "update",
                    "row": {"id": run["id"], "status": "running", "pid": 2**22 + 11},
                },
            ),
            (
                at,
                run["id"],
                "test.forge",
                {
                    "table": "steps",
                    "op": "update",
                    "row": {"run_id": run["id"], "seq": two["seq"], "status": "running"},
                },
            ),
        ]
    )
    journal.close()
    conn.execute("INSERT INTO ready VALUES (2)")
    result = project.run("resume", run["id"])
    assert result.exit_code == 0, result.output
    assert _effects(conn) == ["one", "three", "two-41-42"]  # 'one' not inserted again
    first = project.runs()[0]
    assert first["status"] == "interrupted"
    assert first["steps"][1]["status"] == "ok"
    assert "committed before the run was interrupted" in first["steps"][1]["reason"]


def test_recorder_keeps_secrets_out_of_resume_records() -> None:
    assert recorder.RunRecord("x", "run", "me", extra={"a": 1}).extra == {"a": 1}
