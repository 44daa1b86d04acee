"""Looped steps (`loop:`), on the real server through the real CLI: each
iteration its own record, a summary, halts and continues, gates and `when` per
item, hostile items bound as values, the bound on iterations, the checks."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from .conftest import Project

Conn = psycopg.Connection[tuple[object, ...]]


def _steps(project: Project) -> list[dict[str, Any]]:
    return list(project.last_run()["steps"])


def _rows(conn: Conn, query: str) -> list[Any]:
    return [r[0] for r in conn.execute(query).fetchall()]


VACUUM = """name: vacuum-each
kind: change
vars:
  tables: [orders, "public.items"]
steps:
  - name: Vacuum
    sql: VACUUM (ANALYZE) {{ item | ident }}
    autocommit: true
    loop: "{{ tables }}"
    register: vac
  - name: Analyzed
    query: >
      SELECT count(DISTINCT tablename) AS n FROM pg_stats
      WHERE tablename IN ('orders', 'items')
    gate: {that: "result.scalar == 2 and vac.results | length == 2 and vac.ok"}
"""


def test_vacuum_each_table_one_record_per_iteration(project: Project, conn: Conn) -> None:
    # ANALYZE writes pg_statistic at once (pg_stat_user_tables.last_analyze
    # comes late from PostgreSQL 13's statistics collector): rows to analyze.
    conn.execute("CREATE TABLE orders (id int); CREATE TABLE items (id int)")
    conn.execute("INSERT INTO orders VALUES (1); INSERT INTO items VALUES (1)")
    project.playbook(VACUUM)
    result = project.run("run", "playbooks/p.yaml")
    assert result.exit_code == 0, result.output
    assert "1[0]  Vacuum  [ok" in result.output and "item='orders'" in result.output
    assert "item='public.items'" in result.output
    assert "2 of 2 iteration(s) ok" in result.output
    steps = _steps(project)
    loop = [s for s in steps if s["idx"] == 0]
    assert [(s["number"], s.get("iteration"), s.get("item"), s["status"]) for s in loop] == [
        ("1", None, None, "ok"),
        ("1[0]", 0, "orders", "ok"),
        ("1[1]", 1, "public.items", "ok"),
    ]
    assert loop[0]["loop_items"] == ["orders", "public.items"]
    assert len(loop[0]["result"]["results"]) == 2
    assert 'VACUUM (ANALYZE) "public"."items"' in loop[2]["rendered"]
    listed = project.run("run", "--list-steps", "playbooks/p.yaml").output
    assert "loop: {{ tables }} as item" in listed
    checked = project.run("run", "--check", "playbooks/p.yaml")
    assert checked.exit_code == 0, checked.output
    assert 'VACUUM (ANALYZE) "orders"' in checked.output  # shown per item, not run
    assert "no iteration ran" in checked.output


HALTING = """name: each-tenant
kind: change
on_failure: {policy}
steps:
  - name: Mark tenant
    sql: INSERT INTO marks SELECT {{{{ item }}}}::int / ({{{{ item }}}}::int - 2)
    loop: [1, 2, 3]
    register: marks
  - name: After
    query: SELECT {{{{ marks.failed }}}}::int AS failed, count(*) AS n FROM marks
"""


def test_a_failing_middle_iteration_halts_the_loop_and_resume_starts_at_it(
    project: Project, conn: Conn
) -> None:
    conn.execute("CREATE TABLE marks (v int)")
    project.playbook(HALTING.format(policy="halt"))
    result = project.run("run", "playbooks/p.yaml")
    assert result.exit_code == 3, result.output
    assert "1[1]  Mark tenant  [failed" in result.output
    assert "1[2]" not in result.output  # the rest not run
    assert "1 of 3 iteration(s) ok, 1 failed, 1 not run" in result.output
    assert "iteration 1 (item=2) failed: division by zero" in result.output
    assert _rows(conn, "SELECT v FROM marks") == [-1]
    run = project.last_run()
    summary = next(s for s in run["steps"] if s["number"] == "1")
    assert summary["status"] == "failed"
    # The fault is mended; resume starts at iteration 1: iteration 0 is not repeated.
    conn.execute("ALTER TABLE marks ALTER COLUMN v TYPE numeric")
    project.playbook(HALTING.format(policy="halt").replace("::int - 2", "::int - 2.5"))
    refused = project.run("resume", run["id"])
    assert refused.exit_code == 2 and "changed since run" in refused.output
    resumed = project.run("resume", run["id"], "--force")
    assert resumed.exit_code == 0, resumed.output
    assert "1[0]  Mark tenant  [skipped] item=1" in resumed.output
    assert "3 of 3 iteration(s) ok (1 in an earlier run)" in resumed.output
    assert f"done in run {run['id']}" in resumed.output
    assert sorted(float(str(v)) for v in _rows(conn, "SELECT v FROM marks")) == [-4.0, -1.0, 6.0]


def test_on_failure_continue_runs_every_iteration_and_counts_the_failures(
    project: Project, conn: Conn
) -> None:
    conn.execute("CREATE TABLE marks (v int)")
    project.playbook(HALTING.format(policy="continue"))
    result = project.run("run", "playbooks/p.yaml")
    assert result.exit_code == 3, result.output  # a step failed: never healthy
    assert "1[2]  Mark tenant  [ok" in result.output
    assert "2 of 3 iteration(s) ok, 1 failed" in result.output
    assert sorted(_rows(conn, "SELECT v FROM marks")) == [-1, 3]
    after = next(s for s in _steps(project) if s["number"] == "2")
    assert after["status"] == "ok" and after["result"]["rows"] == [{"failed": 1, "n": 2}]


GATES = """name: each-tenant-check
kind: check
on_failure: continue
vars:
  tenants: [{name: acme, limit: 5}, {name: globex, limit: 1}, {name: skipped, limit: 0}]
steps:
  - name: Tenant size
    query: SELECT {{ tenant.limit }}::int * 2 AS n, {{ loop_index }}::int AS i
    loop: "{{ tenants }}"
    loop_var: tenant
    when: tenant.limit > 0
    register: size
    gate:
      that: result.scalar >= 10 and size.scalar == result.scalar
      severity: WARNING
      message: "tenant {{ tenant.name }} has {{ result.scalar }}"
  - name: Summary
    query: SELECT {{ size.results | length }}::int AS n, {{ size.results[0].scalar }}::int AS first
"""


def test_when_and_gates_are_asked_of_each_item(project: Project) -> None:
    project.playbook(GATES)
    result = project.run("run", "playbooks/p.yaml")
    assert result.exit_code == 1, result.output  # a gate failed
    assert "tenant globex has 2" in result.output
    assert "tenant acme" not in result.output
    assert "1[2]  Tenant size  [skipped] tenant=" in result.output
    assert "when: tenant.limit > 0 is false" in result.output
    steps = _steps(project)
    summary = next(s for s in steps if s["number"] == "1")
    assert summary["status"] == "gate_failed" and summary["severity"] == "WARNING"
    assert [g["message"] for g in summary["gates"]] == ["tenant globex has 2"]
    after = next(s for s in steps if s["number"] == "2")
    assert after["result"]["rows"] == [{"n": 3, "first": 10}]
    third = next(s for s in steps if s["number"] == "1[2]")
    assert third.get("item") == {"name": "skipped", "limit": 0}


def test_hostile_items_are_values_never_sql(project: Project, conn: Conn) -> None:
    conn.execute("CREATE TABLE log (what text)")
    hostile = ["x'); DROP TABLE log; --", 'a"b', "$$; SELECT 1; $$", "1; DELETE FROM log"]
    project.playbook(
        "name: hostile\nkind: change\nsteps:\n"
        "  - name: Log\n    sql: INSERT INTO log VALUES ({{ item }})\n"
        f"    loop: {json.dumps(hostile)}\n"
    )
    result = project.run("run", "playbooks/p.yaml")
    assert result.exit_code == 0, result.output
    assert sorted(_rows(conn, "SELECT what FROM log")) == sorted(hostile)
    params = [s["params"] for s in _steps(project) if s.get("iteration") is not None]
    assert params == [[h] for h in hostile]


def test_a_loop_beyond_ten_thousand_items_or_not_a_list_fails_with_its_place(
    project: Project,
) -> None:
    project.playbook(
        "name: big\nkind: check\nsteps:\n"
        "  - name: Each\n    query: SELECT {{ item }}::int\n"
        '    loop: "{{ range(10001) | list }}"\n'
    )
    result = project.run("run", "playbooks/p.yaml")
    assert result.exit_code == 3, result.output
    assert "loop: gives 10,001 items; a step loops over at most 10,000" in result.output
    assert "p.yaml:4:" in result.output
    assert "1[0]" not in result.output  # not one iteration ran
    project.playbook(
        "name: scalar\nkind: check\nvars: {n: 5}\nsteps:\n"
        '  - name: Each\n    query: SELECT {{ item }}::int\n    loop: "{{ n }}"\n'
    )
    result = project.run("run", "playbooks/p.yaml")
    assert result.exit_code == 3, result.output
    assert "loop: must give a list, not int" in result.output


def test_the_checks_know_the_loop_variable_and_its_reach(project: Project) -> None:
    project.playbook(
        "name: bad\nkind: change\nvars: {xs: [1]}\nsteps:\n"
        "  - name: Reserved\n    query: SELECT 1\n    loop: [1]\n    loop_var: run\n"
        "  - name: Index\n    query: SELECT 1\n    loop: [1]\n    loop_var: loop_index\n"
        "  - name: Alone\n    query: SELECT 1\n    loop_var: x\n"
        "  - name: Block\n    loop: [1]\n    transaction:\n      - {name: In, sql: SELECT 1}\n"
        "  - name: Uses\n    query: SELECT {{ t }}, {{ loop_index }}\n"
        "    loop: '{{ xs }}'\n    loop_var: t\n"
        "  - name: After\n    query: SELECT {{ t }}\n"
        "  - name: Expr\n    query: SELECT 1\n    loop: '{{ nope }}'\n"
        "  - name: Undone\n    sql: SELECT 1\n    rollback:\n"
        "      - {name: Undo, sql: SELECT 1, loop: [1]}\n"
    )
    result = project.run("validate", "playbooks/p.yaml")
    assert result.exit_code == 2, result.output
    out = result.output
    assert "p.yaml:8:15" in out and "'run' is a built-in" in out
    assert "'loop_index' is the iteration's number" in out
    assert "loop_var: without loop:" in out
    assert "a transaction step cannot loop" in out
    assert "'t' is undefined" in out and "p.yaml:25:" in out  # after the loop, not inside it
    assert "'nope' is undefined" in out
    assert "a rollback step cannot loop" in out
    assert out.count("undefined") == 2


ROLLBACK = """name: loop-undo
kind: change
on_failure: rollback
steps:
  - name: Add
    sql: INSERT INTO effects VALUES ({{ item }})
    loop: [a, b, c]
    rollback:
      - name: Take back
        sql: INSERT INTO undo_log VALUES ({{ item }}::text || '@' || {{ loop_index }}::text)
  - name: Fails
    query: SELECT 1 AS n
    gate: {that: "result.scalar == 2"}
"""


def test_rollback_undoes_each_iteration_newest_first_with_its_item(
    project: Project, conn: Conn
) -> None:
    conn.execute("CREATE TABLE effects (what text); CREATE TABLE undo_log (what text)")
    conn.execute("CREATE TABLE undo_order (n serial, what text)")
    project.playbook(
        ROLLBACK.replace("INSERT INTO undo_log VALUES", "INSERT INTO undo_order (what) VALUES")
    )
    result = project.run("run", "playbooks/p.yaml")
    assert result.exit_code == 1, result.output
    assert _rows(conn, "SELECT what FROM undo_order ORDER BY n") == ["c@2", "b@1", "a@0"]
    steps = _steps(project)
    iterations = {s["number"]: s["status"] for s in steps if s.get("iteration") is not None}
    assert iterations == {"1[0]": "rolled_back", "1[1]": "rolled_back", "1[2]": "rolled_back"}
    undo = [(s["undoes"], s.get("undoes_iteration")) for s in steps if s["phase"] == "rollback"]
    assert undo == [(0, 2), (0, 1), (0, 0)]


def test_runbook_rollback_of_a_looped_step(project: Project, conn: Conn) -> None:
    conn.execute("CREATE TABLE effects (what text); CREATE TABLE undo_log (what text)")
    project.playbook(ROLLBACK.replace("on_failure: rollback\n", "").replace("== 2", "== 1"))
    result = project.run("run", "playbooks/p.yaml")
    assert result.exit_code == 0, result.output
    run_id = project.last_run()["id"]
    undone = project.run("rollback", run_id, "--yes")
    assert undone.exit_code == 0, undone.output
    assert _rows(conn, "SELECT what FROM undo_log") == ["c@2", "b@1", "a@0"]


def test_a_secret_item_is_masked_in_the_output_and_the_journal(project: Project) -> None:
    secret = "s3cr3t-Loop-Item"
    project.playbook(
        "name: secret-items\nkind: check\nvars: {pw: null}\nsecrets: [pw]\nsteps:\n"
        "  - name: Each\n    query: SELECT length({{ item }}::text) AS n\n"
        "    loop: ['{{ pw }}', plain]\n    register: lens\n"
        "  - name: After\n    query: SELECT {{ lens.results[0].scalar }}::int AS n\n"
    )
    result = project.run("run", "playbooks/p.yaml", "-e", f"pw={secret}")
    assert result.exit_code == 0, result.output
    assert "item='***'" in result.output and "item='plain'" in result.output
    assert secret not in result.output
    assert secret.encode() not in project.journal_bytes()
    after = next(s for s in _steps(project) if s["number"] == "2")
    assert after["result"]["rows"] == [{"n": len(secret)}]  # the value itself was used
