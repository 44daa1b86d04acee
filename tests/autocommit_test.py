"""An autocommit step runs its statements one at a time, each in autocommit, as
psql does (issue 15, item 12): real CLI, real server, hostile SQL. A kill -9
between two statements is in crash_test (on both journals)."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from .conftest import Project

Conn = psycopg.Connection[tuple[object, ...]]


def _steps(project: Project) -> list[dict[str, Any]]:
    return project.last_run()["steps"]


def _values(conn: Conn) -> list[str]:
    return [str(r[0]) for r in conn.execute("SELECT v FROM t ORDER BY n").fetchall()]


def _table(conn: Conn) -> None:
    conn.execute("CREATE TABLE t (n serial PRIMARY KEY, v text NOT NULL)")


def test_several_statements_that_refuse_a_transaction_block_pass_validation_and_run(
    project: Project, conn: Conn
) -> None:
    conn.execute("CREATE TABLE t1 (x int); CREATE TABLE t2 (x int)")
    book = project.playbook(
        "name: v\nkind: change\nsteps:\n"
        "  - name: Vacuum both\n    autocommit: true\n"
        "    sql: VACUUM t1; VACUUM (ANALYZE) t2; CREATE INDEX CONCURRENTLY t1_x ON t1 (x)\n"
    )
    checked = project.run("validate", str(book))
    assert checked.exit_code == 0, checked.output
    result = project.run("run", str(book))
    assert result.exit_code == 0, result.output
    step = _steps(project)[0]
    assert step["status"] == "ok"
    assert step["statements"] == {"done": 3, "total": 3}
    assert step["rendered"].split(";\n") == [
        "VACUUM t1",
        "VACUUM (ANALYZE) t2",
        "CREATE INDEX CONCURRENTLY t1_x ON t1 (x)",
    ]
    assert conn.execute("SELECT to_regclass('t1_x') IS NOT NULL").fetchone() == (True,)


def test_a_step_in_a_transaction_with_vacuum_is_still_refused_where_it_stands(
    project: Project,
) -> None:
    project.write("sql/maint.sql", "SELECT 1;\nVACUUM t;\n")
    book = project.playbook(
        "name: v\nkind: change\nsteps:\n"
        "  - name: Fine\n    sql: SELECT 1\n"
        "  - name: In a transaction\n    sql: SELECT 1; VACUUM t1; VACUUM t2\n"
        "  - name: From a file\n    sql_file: maint.sql\n"
    )
    result = project.run("validate", str(book))
    assert result.exit_code == 2
    refused = [
        line
        for line in result.output.splitlines()
        if "needs-autocommit" in line or "`VACUUM" in line
    ]
    assert len(refused) == 2, result.output
    assert ":7:10:" in refused[0] and "`VACUUM t1` cannot run inside a transaction" in refused[0]
    assert ":9:15:" in refused[1] and "`VACUUM t`" in refused[1]
    assert "autocommit: true" in refused[0]


HOSTILE = """name: hostile
kind: change
vars:
  value: "x'); DROP TABLE t; --"
steps:
  - name: Hostile shapes
    autocommit: true
    sql: |
      INSERT INTO t (v) VALUES ('a;b');  -- a ; in a comment
      DO $body$ BEGIN INSERT INTO t (v) VALUES ('c;d'); END $body$;;
      /* ; */ INSERT INTO t (v) VALUES ({{ value }});
      VACUUM t;
      SELECT v FROM t ORDER BY n;
      -- a trailing comment; with a semicolon
    register: rows
    gate: {that: "rows.rowcount == 3 and rows.rows[2].v == value"}
"""


def test_statements_split_by_the_lexer_with_values_bound_where_used(
    project: Project, conn: Conn
) -> None:
    _table(conn)
    book = project.playbook(HOSTILE)
    result = project.run("run", str(book))
    assert result.exit_code == 0, result.output
    assert _values(conn) == ["a;b", "c;d", "x'); DROP TABLE t; --"]
    step = _steps(project)[0]
    assert step["statements"] == {"done": 5, "total": 5}
    statements = step["rendered"].split(";\n")
    assert statements[0] == "INSERT INTO t (v) VALUES ('a;b')"
    assert statements[1].endswith("DO $body$ BEGIN INSERT INTO t (v) VALUES ('c;d'); END $body$")
    assert statements[2] == "/* ; */ INSERT INTO t (v) VALUES ($1)"  # its own $1
    assert statements[3:] == ["VACUUM t", "SELECT v FROM t ORDER BY n"]
    assert step["params"] == ["x'); DROP TABLE t; --"]
    assert [r["v"] for r in step["result"]["rows"]] == _values(conn)  # the last statement's rows


def test_values_in_the_second_statement_go_to_the_second(project: Project, conn: Conn) -> None:
    _table(conn)
    book = project.playbook(
        "name: p\nkind: change\nvars: {first: one, second: two}\nsteps:\n"
        "  - name: Two with values\n    autocommit: true\n"
        "    sql: VACUUM t; INSERT INTO t (v) VALUES ({{ second }}), ({{ first }}); VACUUM t\n"
    )
    result = project.run("run", str(book))
    assert result.exit_code == 0, result.output
    assert _values(conn) == ["two", "one"]
    rendered = _steps(project)[0]["rendered"].split(";\n")
    assert rendered == ["VACUUM t", "INSERT INTO t (v) VALUES ($1), ($2)", "VACUUM t"]


def test_a_failing_middle_statement_stops_the_step_and_says_which(
    project: Project, conn: Conn
) -> None:
    _table(conn)
    book = project.playbook(
        "name: f\nkind: change\nsteps:\n"
        "  - name: Three, the second fails\n    autocommit: true\n"
        "    sql: |\n"
        "      INSERT INTO t (v) VALUES ('first');\n"
        "      INSERT INTO missing VALUES (1);\n"
        "      INSERT INTO t (v) VALUES ('third');\n"
        "  - name: Not reached\n    sql: INSERT INTO t (v) VALUES ('after')\n"
    )
    result = project.run("run", str(book), "--format", "json")
    assert result.exit_code == 3, result.output
    assert _values(conn) == ["first"]  # committed, and nothing after the failure ran
    step = json.loads(result.stdout)["runs"][0]["steps"][0]
    assert step["status"] == "failed" and step["sqlstate"] == "42P01"
    assert step["error"].startswith('statement 2 of 3: relation "missing" does not exist')
    assert "statement 1 ended before it and stays done (autocommit)" in step["error"]
    assert step["statements"] == {"done": 1, "total": 3}
    journaled = _steps(project)[0]
    assert journaled["statements"] == {"done": 1, "total": 3}
    assert journaled["error"] == step["error"]
    plain = project.run("run", str(book))
    assert "error: statement 2 of 3: relation" in plain.output


def test_the_first_statement_failing_says_none_ran(project: Project, conn: Conn) -> None:
    book = project.playbook(
        "name: f\nkind: change\nsteps:\n"
        "  - {name: Bad first, autocommit: true, sql: 'VACUUM missing; VACUUM pg_class'}\n"
    )
    result = project.run("run", str(book))
    assert result.exit_code == 3
    assert "statement 1 of 2:" in result.output and "none ran before it" in result.output


def test_a_retry_goes_on_at_the_statement_that_failed(project: Project, conn: Conn) -> None:
    _table(conn)
    conn.execute("CREATE SEQUENCE tries")
    book = project.playbook(
        "name: r\nkind: change\nsteps:\n"
        "  - name: Second fails once\n    autocommit: true\n    retries: 1\n    delay: 0s\n"
        "    sql: |\n"
        "      INSERT INTO t (v) VALUES ('once');\n"
        "      SELECT 1 / (nextval('tries') - 1)::int;\n"  # by zero the first time only
        "      INSERT INTO t (v) VALUES ('last');\n"
    )
    result = project.run("run", str(book))
    assert result.exit_code == 0, result.output
    assert _values(conn) == ["once", "last"]  # the first, committed, is not run again
    step = _steps(project)[0]
    assert step["attempts"] == 2 and step["statements"] == {"done": 3, "total": 3}


def test_a_single_statement_is_not_counted(project: Project, conn: Conn) -> None:
    book = project.playbook(
        "name: s\nkind: change\nsteps:\n"
        "  - {name: One, autocommit: true, sql: 'VACUUM pg_class; -- and a comment;'}\n"
    )
    result = project.run("run", str(book))
    assert result.exit_code == 0, result.output
    step = _steps(project)[0]
    assert step.get("statements") is None and step["rendered"] == "VACUUM pg_class"


def test_check_shows_each_statement(project: Project, conn: Conn) -> None:
    _table(conn)
    book = project.playbook(HOSTILE)
    result = project.run("run", str(book), "--check")
    assert result.exit_code == 0, result.output
    assert "VALUES ('x''); DROP TABLE t; --')" in result.output
    assert _values(conn) == []
