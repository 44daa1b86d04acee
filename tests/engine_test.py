"""The step loop on a real database: statuses, gates, halts, the journal."""

from __future__ import annotations

import json

import psycopg
import pytest

from runbook.errors import TemplateError

from .conftest import Project

FAULTY = """name: fault-check
kind: check
vars: {limit: 0}
steps:
  - name: Count panels with an impossible status
    query: SELECT count(*) AS n FROM panels WHERE status NOT IN ('PENDING', 'DONE')
    register: bad
    gate:
      that: bad.scalar <= limit
      severity: CRITICAL
      message: "{{ bad.scalar }} panel(s) with an unknown status: correct them before the shift"
  - name: Never reached
    query: SELECT 1
  - name: Also never reached
    query: SELECT 2
"""


def _panels(conn: psycopg.Connection[tuple[object, ...]], bad: int) -> None:
    conn.execute("CREATE TABLE panels (id serial PRIMARY KEY, status text NOT NULL)")
    conn.execute("INSERT INTO panels (status) SELECT 'DONE' FROM generate_series(1, 20)")
    conn.execute("INSERT INTO panels (status) SELECT 'LOST' FROM generate_series(1, %s)", (bad,))


def test_planted_fault_halts_at_gate_with_exit_1(
    project: Project, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    _panels(conn, bad=2)
    result = project.run("run", str(project.playbook(FAULTY)))
    assert result.exit_code == 1, result.output
    assert "2 panel(s) with an unknown status: correct them before the shift" in result.stdout
    run = project.last_run()
    assert (
        run["status"] == "gate_failed" and run["exit_code"] == 1 and run["severity"] == "CRITICAL"
    )
    assert [(s["number"], s["status"]) for s in run["steps"]] == [
        ("1", "gate_failed"),
        ("2", "not_run"),
        ("3", "not_run"),
    ]
    first = run["steps"][0]
    assert (
        first["rendered"]
        == "SELECT count(*) AS n FROM panels WHERE status NOT IN ('PENDING', 'DONE')"
    )
    assert first["result"]["rows"] == [{"n": 2}]
    assert first["gates"][0]["passed"] is False


def test_clean_database_exits_0(
    project: Project, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    _panels(conn, bad=0)
    result = project.run("run", str(project.playbook(FAULTY)))
    assert result.exit_code == 0, result.output
    run = project.last_run()
    assert run["status"] == "ok"
    assert [s["status"] for s in run["steps"]] == ["ok", "ok", "ok"]
    assert run["counts"]["ok"] == 3


def test_sql_error_exit_3_with_sqlstate(project: Project) -> None:
    book = project.playbook(
        "name: e\nkind: change\nsteps:\n  - name: Broken\n    sql: SELECT * FROM no_such_table\n  - name: After\n    sql: SELECT 1\n"
    )
    result = project.run("run", str(book))
    assert result.exit_code == 3
    assert 'relation "no_such_table" does not exist [SQLSTATE 42P01]' in result.stdout
    run = project.last_run()
    assert run["status"] == "failed"
    assert [(s["status"], s["sqlstate"]) for s in run["steps"]] == [
        ("failed", "42P01"),
        ("not_run", None),
    ]


def test_on_failure_continue_runs_later_steps_and_still_reports(project: Project) -> None:
    book = project.playbook(
        """name: c
kind: change
steps:
  - name: Broken but tolerated
    sql: SELECT 1/0
    on_failure: continue
  - name: Gate tolerated
    gate: {that: "1 == 2", severity: WARNING, on_failure: continue}
  - name: Still runs
    query: SELECT 42 AS answer
    register: a
"""
    )
    result = project.run("run", str(book))
    assert result.exit_code == 3  # the worst outcome decides, even when continued past
    assert [s["status"] for s in project.last_run()["steps"]] == ["failed", "gate_failed", "ok"]


def test_read_only_check_playbook_refuses_a_write(
    project: Project, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    conn.execute("CREATE TABLE t (x int)")
    book = project.playbook(
        "name: ro\nkind: check\nsteps:\n  - name: Sneaky write\n    query: INSERT INTO t VALUES (1) RETURNING x\n"
    )
    result = project.run("run", str(book))
    assert result.exit_code == 3
    assert "read-only transaction" in result.stdout
    assert "this playbook is kind: check and runs read-only" in result.stdout
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_a_step_that_turns_read_only_off_fails_and_later_writes_are_still_refused(
    project: Project, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    conn.execute("CREATE TABLE t (x int)")
    # The setting's name is put together at run time, so the check of the SQL
    # text (validate) cannot see it: the server's report of the setting can.
    book = project.playbook(
        """name: ro
kind: check
steps:
  - name: Turns read-only off
    sql: "DO $$ BEGIN PERFORM set_config('default_transaction' || '_read_only', 'off', false); END $$"
    writes: false
    on_failure: continue
  - name: Writes, believing it reads
    sql: INSERT INTO t VALUES (1)
    writes: false
    on_failure: continue
"""
    )
    result = project.run("run", str(book))
    assert result.exit_code == 3
    steps = project.last_run()["steps"]
    assert [s["status"] for s in steps] == ["failed", "failed"]
    assert "turned read-only off" in steps[0]["error"]
    assert "read-only transaction" in steps[1]["error"]
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_when_and_register_of_skipped_step(project: Project) -> None:
    book = project.playbook(
        """name: w
kind: check
vars: {enabled: false}
steps:
  - name: Optional
    when: enabled
    query: SELECT 1 AS one
    register: opt
  - name: Sees the skip
    gate: {that: "opt.skipped and opt.rows == [] and opt.scalar is none"}
"""
    )
    result = project.run("run", str(book))
    assert result.exit_code == 0, result.output
    steps = project.last_run()["steps"]
    assert steps[0]["status"] == "skipped" and steps[0]["reason"] == "when: enabled is false"
    assert steps[1]["status"] == "ok"


def test_skip_message_says_why_a_step_is_skipped(project: Project) -> None:
    book = project.playbook(
        """name: w
kind: check
vars: {tool: ""}
steps:
  - name: Probe
    query: SELECT false AS loaded, 'the library is not loaded' AS reason
    register: probe
  - name: Optional
    when: probe.first.loaded
    skip_message: "{{ probe.first.reason }}"
    query: SELECT 1
"""
    )
    result = project.run("run", str(book))
    assert result.exit_code == 0, result.output
    step = project.last_run()["steps"][1]
    assert step["status"] == "skipped"
    assert step["reason"] == "the library is not loaded (when: probe.first.loaded is false)"
    assert "the library is not loaded" in result.output


def test_registered_result_fields(project: Project) -> None:
    book = project.playbook(
        """name: r
kind: check
steps:
  - name: Rows
    query: |
      DO $$ BEGIN RAISE NOTICE 'counting %', 'now'; END $$;
      SELECT g AS n, 'x' || g AS label FROM generate_series(1, 3) g ORDER BY g
    register: q
  - name: Fields
    assert:
      that:
        - q.rowcount == 3
        - q.columns == ['n', 'label']
        - q.first.label == 'x1'
        - q.scalar == 1
        - q.rows[2].n == 3
        - "q.notices == ['NOTICE: counting now']"
        - q.duration_ms >= 0
"""
    )
    result = project.run("run", str(book))
    assert result.exit_code == 0, result.output


def test_journal_records_each_step_before_and_after(project: Project) -> None:
    book = project.playbook("name: j\nkind: check\nsteps:\n  - name: One\n    query: SELECT 1\n")
    project.run("run", str(book))
    journal = project.journal()
    try:
        kinds = [e.kind for e in journal.events()]
        assert kinds == ["run.start", "step.start", "step.end", "run.end"]
        assert journal.verify() == []
    finally:
        journal.close()


def test_json_output_document(project: Project) -> None:
    book = project.playbook(
        "name: js\nkind: check\nsteps:\n  - name: One\n    query: SELECT 7 AS seven\n"
    )
    result = project.run("run", str(book), "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == 0
    (run,) = doc["runs"]
    assert run["playbook"] == "js" and run["target"] == "db" and run["status"] == "ok"
    (step,) = run["steps"]
    assert (
        step["status"] == "ok"
        and step["rowcount"] == 1
        and step["result"]["rows"] == [{"seven": 7}]
    )
    assert step["duration_ms"] > 0 and step["severity"] is None and step["error"] is None


def test_junit_report(project: Project, tmp_path_factory: object) -> None:
    from xml.etree import ElementTree

    book = project.playbook(
        FAULTY.replace("panels", "pg_class").replace("status NOT IN ('PENDING', 'DONE')", "true")
    )
    out = project.root / "junit.xml"
    result = project.run("run", str(book), "--junit", str(out))
    assert result.exit_code == 1
    suite = ElementTree.parse(out).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1" and suite.get("tests") == "3"
    failure = suite.find("testcase/failure")
    assert failure is not None and "unknown status" in (failure.get("message") or "")


def test_gate_that_cannot_be_evaluated_fails_the_step_and_the_run_is_recorded(
    project: Project,
) -> None:
    # Comparing a number with text is an error only the real values show.
    book = project.playbook(
        """name: g
kind: change
steps:
  - name: Write first
    sql: CREATE TABLE gate_error_t (a int)
  - name: Compare
    query: SELECT 3 AS n
    register: r
    gate: {that: "r.scalar > 'three'"}
  - name: Never
    query: SELECT 1
"""
    )
    result = project.run("run", str(book))
    assert result.exit_code == 3, result.output
    assert "'>' not supported" in result.stdout
    run = project.last_run()
    assert run["status"] == "failed" and run["exit_code"] == 3
    assert [s["status"] for s in run["steps"]] == ["ok", "failed", "not_run"]


def test_several_gates_on_one_step_the_worst_speaks_and_the_strictest_policy_holds(
    project: Project,
) -> None:
    book = project.playbook(
        """name: many
kind: check
steps:
  - name: Three gates
    query: SELECT 5 AS n
    register: r
    on_failure: continue
    gate:
      - {that: r.scalar < 1, severity: WARNING, message: mild, name: mild}
      - {that: r.scalar < 2, severity: CRITICAL, message: grave, name: grave, on_failure: halt}
      - {that: r.scalar < 10, severity: CRITICAL, message: passes, name: fine}
  - name: After
    query: SELECT 1
"""
    )
    result = project.run("run", str(book))
    assert result.exit_code == 1, result.output
    first = project.last_run()["steps"][0]
    assert first["severity"] == "CRITICAL"
    assert first["reason"] == "grave (and 1 more gate(s) failed)"
    # `grave` halts even though the step (and `mild`) would continue.
    assert [s["status"] for s in project.last_run()["steps"]] == ["gate_failed", "not_run"]


def test_a_step_scope_is_its_own_and_sees_every_registered_result() -> None:
    from runbook.engine.scope import Registered, step_scope
    from runbook.model import Step
    from runbook.plan import PlannedStep

    def planned(vars_: dict[str, object]) -> PlannedStep:
        step = Step(kind="query", name="s", body="SELECT 1", loc=None, data_path=(), vars=vars_)  # type: ignore[arg-type]
        return PlannedStep(1, "1", step, None)  # type: ignore[arg-type]

    registered = Registered({"limit": 5, "r": "base value"})
    registered["r"] = "registered"  # a register named like a var hides it
    registered.update({"total": 7})  # a `set` step
    first, lent = step_scope(planned({"n": "{{ limit }}"}), {}, registered, (), {"limit": 9})
    assert first == {"limit": 9, "r": "registered", "total": 7, "n": 5}
    first["result"] = "only this step's"
    registered["mine"] = "registered by the step"
    assert lent
    registered.give_back()
    second, lent = step_scope(planned({}), {}, registered, (), {})
    assert second == {"limit": 5, "r": "registered", "total": 7, "mine": "registered by the step"}
    assert lent
    registered.give_back()
    # A step's var hides a registered result only while the step runs; a var
    # that cannot be rendered leaves the run's scope as it was.
    third, lent = step_scope(planned({"r": "mine", "total": "{{ 1 }}"}), {}, registered, (), {})
    assert third["r"] == "mine"
    assert lent
    registered.give_back()
    with pytest.raises(TemplateError):
        step_scope(planned({"limit": "{{ 2 }}", "bad": "{{ nope }}"}), {}, registered, (), {})
    assert (
        registered.merged
        == second
        == {"limit": 5, "r": "registered", "total": 7, "mine": "registered by the step"}
    )
    assert dict(registered) == {"r": "registered", "total": 7, "mine": "registered by the step"}


def test_a_steps_vars_hide_the_runs_values_only_while_it_runs(project: Project) -> None:
    book = project.playbook(
        """name: scopes
kind: check
vars: {x: 0}
steps:
  - {name: Own var, query: "SELECT {{ x }}::int AS v", vars: {x: 1}, register: a, gate: {that: a.scalar == 1}}
  - {name: Run's var again, query: "SELECT {{ x }}::int AS v", register: b, gate: {that: b.scalar == 0}}
  - {name: Set it, set: {x: 5}}
  - {name: Own var over a set one, query: "SELECT {{ x }}::int AS v", vars: {x: 7}, register: c, gate: {that: c.scalar == 7}}
  - {name: The set one again, query: "SELECT {{ x }}::int AS v", register: d, gate: {that: d.scalar == 5}}
  - {name: A var named like a result, query: "SELECT {{ a }}::int AS v", vars: {a: 3}, register: e, gate: {that: e.scalar == 3}}
  - name: Every result as registered
    assert:
      that:
        - a.scalar == 1 and b.scalar == 0 and c.scalar == 7 and d.scalar == 5
        - e.scalar == 3 and a.columns == ['v']
"""
    )
    result = project.run("run", str(book), "-e", "unused=1")
    assert result.exit_code == 0, result.output
