"""Every step kind, run by the real CLI against a real database."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from .conftest import Project

Conn = psycopg.Connection[tuple[object, ...]]


def steps(project: Project) -> list[dict[str, Any]]:
    return project.last_run()["steps"]


def test_sql_file_with_values(project: Project, conn: Conn) -> None:
    project.write(
        "sql/checks/count.sql",
        "-- count rows over a limit\nSELECT count(*) AS n FROM pg_class WHERE relpages >= {{ min_pages }};\n",
    )
    book = project.playbook(
        "name: f\nkind: check\nvars: {min_pages: 0}\nsteps:\n"
        "  - name: From a file\n    sql_file: checks/count.sql\n    writes: false\n    register: c\n"
        "    gate: {that: c.scalar > 0}\n"
    )
    result = project.run("run", str(book))
    assert result.exit_code == 0, result.output
    assert "relpages >= $1" in steps(project)[0]["rendered"]


def test_multi_statement_sql_and_dollar_quotes_and_percent(project: Project, conn: Conn) -> None:
    book = project.playbook(
        """name: m
kind: change
vars: {label: "50% off; DROP TABLE t; --"}
steps:
  - name: Several statements, no values
    sql: |
      CREATE TABLE t (x int, label text);
      CREATE FUNCTION bump() RETURNS int LANGUAGE plpgsql AS $fn$
      BEGIN RETURN 1; END; $fn$;
      INSERT INTO t SELECT bump(), 'a%b';
  - name: Several statements with values run one by one
    sql: |
      INSERT INTO t VALUES (2, {{ label }});
      INSERT INTO t VALUES (3, {{ label }} || '!');
  - name: Percent signs in text
    query: SELECT count(*) AS n FROM t WHERE label LIKE '%off%' OR label LIKE 'a%'
    register: q
    gate: {that: q.scalar == 3}
"""
    )
    result = project.run("run", str(book))
    assert result.exit_code == 0, result.output
    assert conn.execute("SELECT label FROM t ORDER BY x").fetchall() == [
        ("a%b",),
        ("50% off; DROP TABLE t; --",),
        ("50% off; DROP TABLE t; --!",),
    ]


def test_ident_and_literal(project: Project, conn: Conn) -> None:
    conn.execute('CREATE SCHEMA "Odd Schema"')
    conn.execute('CREATE TABLE "Odd Schema".items (n int)')
    book = project.playbook(
        """name: i
kind: change
vars: {table: "Odd Schema.items", comment: "it's fine"}
steps:
  - name: Insert into a quoted name
    sql: INSERT INTO {{ table | ident }} VALUES (1), (2)
  - name: DDL takes no parameters
    sql: COMMENT ON TABLE {{ table | ident }} IS {{ comment | literal }}
  - name: Count
    query: SELECT count(*) FROM {{ table | ident }}
    register: c
    gate: {that: c.scalar == 2}
"""
    )
    result = project.run("run", str(book))
    assert result.exit_code == 0, result.output
    assert conn.execute(
        """SELECT obj_description('"Odd Schema".items'::regclass)"""
    ).fetchone() == ("it's fine",)
    assert (
        steps(project)[1]["rendered"] == """COMMENT ON TABLE "Odd Schema"."items" IS 'it''s fine'"""
    )


def test_gate_step_assert_and_classify(project: Project) -> None:
    book = project.playbook(
        """name: g
kind: check
steps:
  - name: Success rate
    query: SELECT 97.5::numeric AS rate
    register: snap
  - name: Rate is a number
    assert: {that: "snap.scalar is number", message: "no rate recorded"}
  - name: Classify the success rate
    classify:
      value: snap.scalar
      thresholds:
        - {severity: CRITICAL, below: 95, label: critical}
        - {severity: WARNING, below: 98, label: degraded}
      default: HEALTHY
      message: "success rate {{ value }}% is {{ label }}"
    register: rate
  - name: Fail at critical only
    classify:
      value: snap.scalar
      thresholds: [{severity: CRITICAL, below: 95}, {severity: WARNING, below: 98}]
      fail_at: CRITICAL
  - name: Gate on the classification
    gate: {that: "rate.severity == 'WARNING' and rate.label == 'degraded'", severity: LOW}
  - name: Now fail it
    classify:
      value: snap.scalar
      thresholds: [{severity: WARNING, below: 98}]
      fail_at: WARNING
      message: "success rate {{ value }}% below 98%"
"""
    )
    result = project.run("run", str(book))
    assert result.exit_code == 1, result.output
    got = steps(project)
    assert [s["status"] for s in got] == ["ok", "ok", "ok", "ok", "ok", "gate_failed"]
    assert got[2]["severity"] == "WARNING" and got[2]["result"]["label"] == "degraded"
    assert got[5]["reason"] == "success rate 97.5% below 98%"
    assert project.last_run()["severity"] == "WARNING"


def test_assert_failure_is_a_step_error(project: Project) -> None:
    book = project.playbook(
        "name: a\nkind: check\nsteps:\n  - name: Precondition\n    assert: {that: 1 > 2, message: the constraint must exist first}\n"
    )
    result = project.run("run", str(book))
    assert result.exit_code == 3
    assert steps(project)[0]["error"] == "the constraint must exist first"


def test_set_keeps_types_and_include_passes_vars(project: Project, conn: Conn) -> None:
    conn.execute("CREATE TABLE items (n int)")
    conn.execute("INSERT INTO items SELECT generate_series(1, 5)")
    project.playbook(
        """name: count-table
kind: check
vars: {table: null, minimum: 1}
steps:
  - name: Count {{ table }}
    query: SELECT count(*) AS n FROM {{ table | ident }}
    register: counted
    gate: {that: counted.scalar >= minimum, message: "{{ table }} has {{ counted.scalar }} rows"}
""",
        "count.yaml",
    )
    book = project.playbook(
        """name: main
kind: check
steps:
  - name: Pick
    set: {which: items, floor: "{{ 2 + 1 }}", words: "n={{ 2 + 1 }}"}
  - name: Types
    assert: {that: ["floor == 3", "words == 'n=3'"]}
  - name: Count through the shared playbook
    include: count.yaml
    vars: {table: "{{ which }}", minimum: "{{ floor }}"}
  - name: Registered inside, seen outside
    gate: {that: counted.scalar == 5}
""",
        "main.yaml",
    )
    result = project.run("run", str(book))
    assert result.exit_code == 0, result.output
    assert [(s["number"], s["kind"], s["status"]) for s in steps(project)] == [
        ("1", "set", "ok"),
        ("2", "assert", "ok"),
        ("3", "include", "ok"),
        ("3.1", "query", "ok"),
        ("4", "gate", "ok"),
    ]


def test_retries_until(project: Project, conn: Conn) -> None:
    conn.execute("CREATE SEQUENCE s")
    book = project.playbook(
        """name: r
kind: change
steps:
  - name: Poll a counter
    query: SELECT nextval('s') AS n
    writes: true
    register: c
    until: c.scalar >= 3
    retries: 5
    delay: 0.01
"""
    )
    result = project.run("run", str(book))
    assert result.exit_code == 0, result.output
    step = steps(project)[0]
    assert step["attempts"] == 3 and len(step["history"]) == 2
    assert "still false" in step["history"][0]["error"]


def test_retries_exhausted(project: Project) -> None:
    book = project.playbook(
        "name: r\nkind: check\nsteps:\n  - name: Never true\n    query: SELECT 1 AS n\n    until: result.scalar == 2\n    retries: 2\n    delay: 0\n"
    )
    result = project.run("run", str(book))
    assert result.exit_code == 3
    step = steps(project)[0]
    assert (
        step["attempts"] == 3
        and step["error"] == "until: result.scalar == 2 is still false after 3 attempt(s)"
    )


def test_wait_polls_until_true(project: Project, conn: Conn) -> None:
    conn.execute("CREATE SEQUENCE s")
    book = project.playbook(
        """name: w
kind: check
steps:
  - name: Wait for the counter
    wait: {query: "SELECT nextval('s') AS n", until: result.scalar >= 4, interval: 0.01, timeout: 30s}
    register: waited
  - name: Sleep a little
    wait: {for: 10ms}
  - name: Give up
    wait: {query: "SELECT 0 AS n", until: result.scalar == 1, interval: 0.01, timeout: 0.05}
"""
    )
    conn.execute("ALTER SEQUENCE s OWNED BY NONE")
    result = project.run("run", str(book))
    # nextval writes, so the read-only check playbook refuses it: poll a read instead
    assert result.exit_code == 3
    book2 = project.playbook(
        book.read_text()
        .replace("kind: check", "kind: change")
        .replace("SELECT nextval('s') AS n", "SELECT count(*) AS n FROM generate_series(1, 4)")
    )
    result = project.run("run", str(book2))
    assert result.exit_code == 3
    got = steps(project)
    assert [s["status"] for s in got] == ["ok", "ok", "failed"]
    assert "is still false" in got[2]["error"]


def test_shell_argv_has_no_shell(project: Project) -> None:
    book = project.playbook(
        """name: s
kind: change
vars: {word: "a; touch pwned"}
steps:
  - name: Echo a value that looks like shell
    shell: [echo, "{{ word }}"]
    register: out
    gate: {that: "out.stdout == 'a; touch pwned\\n' and out.status == 0"}
  - name: Pipes through /bin/sh, values as variables
    shell: {command: "printf '%s' {{ word }} | wc -c"}
    register: counted
    gate: {that: counted.stdout.strip() == '14'}
  - name: The target's connection is in the environment
    shell: {command: "psql -XAtc 'select current_database()'"}
    register: db
    gate: {that: db.stdout.strip().startswith('t_')}
  - name: Exit status can be gated
    shell: {argv: [sh, -c, "exit 3"], ok_status: [0, 3]}
    register: three
    gate: {that: three.status == 3}
  - name: Other statuses fail
    shell: [sh, -c, "echo boom >&2; exit 4"]
"""
    )
    result = project.run("run", str(book))
    assert result.exit_code == 3, result.output
    got = steps(project)
    assert [s["status"] for s in got] == ["ok", "ok", "ok", "ok", "failed"]
    assert got[4]["error"] == "sh exited with status 4: boom"
    assert not (project.root / "pwned").exists()
    # What a command printed is shown under its step, like a query's rows.
    assert "       | a; touch pwned\n" in result.stdout
    assert "       | 14\n" in result.stdout


def test_long_shell_output_shows_its_end(project: Project) -> None:
    book = project.playbook(
        "name: s\nkind: change\nsteps:\n  - name: Count\n    shell: [seq, '25']\n"
    )
    result = project.run("run", str(book))
    assert result.exit_code == 0, result.output
    assert "(15 earlier line(s) of output)" in result.stdout
    shown = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("|")]
    assert shown == [f"| {n}" for n in range(16, 26)]


def test_shell_timeout(project: Project) -> None:
    book = project.playbook(
        "name: s\nkind: change\nsteps:\n  - name: Too slow\n    shell: [sleep, '10']\n    timeout: 0.2\n"
    )
    result = project.run("run", str(book))
    assert result.exit_code == 3
    killed = steps(project)[0]
    # It ran until it was killed: what it did is unknown (runbook.engine.outside).
    assert killed["status"] == "unknown"
    assert killed["error"].startswith("command timed out after 0.2s and was killed: sleep")


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(
            {
                "status": "healthy" if self.path == "/health" else "degraded",
                "auth": self.headers.get("Authorization"),
            }
        )
        self.send_response(200 if self.path != "/down" else 503)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def web() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_http_status_and_json_body(
    project: Project, web: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEALTH_TOKEN", "s3cret-token")
    book = project.playbook(
        f"""name: h
kind: check
steps:
  - name: Health endpoint
    http:
      url: {web}/health
      headers: {{Authorization: {{from_env: HEALTH_TOKEN}}}}
    register: h
    gate: {{that: "h.status == 200 and h.json.status == 'healthy' and h.json.auth == 's3cret-token'"}}
  - name: Degraded endpoint answers 503
    http: {{url: "{web}/down"}}
"""
    )
    result = project.run("run", str(book))
    assert result.exit_code == 3, result.output
    got = steps(project)
    assert got[0]["status"] == "ok"
    assert got[1]["error"] == f"GET {web}/down answered HTTP 503"
    assert "s3cret-token" not in json.dumps(got)
    assert "s3cret-token" not in result.stdout


def test_confirm_needs_a_person_or_yes(project: Project) -> None:
    book = project.playbook(
        "name: c\nkind: change\nsteps:\n  - name: Production stopped?\n    confirm: Has production been stopped?\n"
        "  - name: After\n    sql: SELECT 1\n"
    )
    result = project.run("run", str(book))
    assert result.exit_code == 3
    assert (
        "needs a person to confirm: 'Has production been stopped?'; run from a terminal, or pass --yes"
        in result.stdout
    )
    assert [s["status"] for s in steps(project)] == ["failed", "not_run"]
    result = project.run("run", str(book), "--yes")
    assert result.exit_code == 0
    assert steps(project)[0]["note"] == "confirmed by --yes"


def test_tags_and_skip_tags(project: Project) -> None:
    book = project.playbook(
        """name: t
kind: check
steps:
  - {name: A, query: SELECT 1, tags: [daily]}
  - {name: B, query: SELECT 2, tags: [weekly]}
  - {name: C, query: SELECT 3, tags: [always]}
"""
    )
    assert project.run("run", str(book), "--tags", "daily").exit_code == 0
    assert [s["status"] for s in steps(project)] == ["ok", "skipped", "ok"]
    assert project.run("run", str(book), "--skip-tags", "daily,always").exit_code == 0
    assert [s["status"] for s in steps(project)] == ["skipped", "ok", "skipped"]


def test_extra_vars_forms(project: Project) -> None:
    project.write("vars.yaml", "limit: 5\nname: from-file\n")
    book = project.playbook(
        "name: e\nkind: check\nvars: {limit: null, name: x, flag: false}\nsteps:\n"
        "  - name: Check\n    assert: {that: ['limit == 7', \"name == 'from-file'\", 'flag is true']}\n"
    )
    assert project.run("run", str(book)).exit_code == 2  # limit has no value
    result = project.run(
        "run", str(book), "-e", "@vars.yaml", "-e", "limit=7", "-e", '{"flag": true}'
    )
    assert result.exit_code == 0, result.output
