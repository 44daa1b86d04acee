"""SQL templating: values are bound parameters, never text; names are quoted."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql as pgsql

from runbook.errors import TemplateError
from runbook.sqltemplate import sqlprogram, sqltext, template

Conn = psycopg.Connection[tuple[object, ...]]


def test_values_become_parameters() -> None:
    (stmt,) = template.render_sql(
        "SELECT * FROM t WHERE a = {{ x }} AND b LIKE '%z%'", {"x": "1'; DROP TABLE t; --"}
    )
    assert stmt.query == "SELECT * FROM t WHERE a = %s AND b LIKE '%%z%%'"
    assert stmt.params == ("1'; DROP TABLE t; --",)
    assert stmt.display == "SELECT * FROM t WHERE a = $1 AND b LIKE '%z%'"


def test_no_values_means_text_as_written() -> None:
    source = "DO $$ BEGIN RAISE NOTICE '100%%'; END $$; SELECT '%';"
    assert template.render_sql(source, {}) == [template.RenderedSql(source, None, source)]


def test_several_statements_with_values_are_split() -> None:
    stmts = template.render_sql(
        "INSERT INTO t VALUES ({{ a }}); INSERT INTO t VALUES ({{ b }}, ';')", {"a": 1, "b": 2}
    )
    assert [(s.query, s.params) for s in stmts] == [
        ("INSERT INTO t VALUES (%s)", (1,)),
        ("INSERT INTO t VALUES (%s, ';')", (2,)),
    ]


def test_ident_quotes_and_splits_schema() -> None:
    (stmt,) = template.render_sql("SELECT * FROM {{ t | ident }}", {"t": 'public.we"ird'})
    assert stmt.query == 'SELECT * FROM "public"."we""ird"'
    (stmt,) = template.render_sql("SELECT * FROM {{ t | ident }}", {"t": ["a.b", "c"]})
    assert stmt.query == 'SELECT * FROM "a.b"."c"'


def test_literal_is_quoted_by_psycopg() -> None:
    (stmt,) = template.render_sql("SET application_name = {{ v | literal }}", {"v": "it's"})
    assert stmt.query == "SET application_name = 'it''s'" and stmt.params is None


@pytest.mark.parametrize(
    ("source", "where"),
    [
        ("SELECT '{{ x }}'", "a quoted string"),
        ("DO $$ BEGIN PERFORM {{ x }}; END $$", "a dollar-quoted body"),
        ("SELECT 1 -- {{ x }}\n", "a comment"),
        ('SELECT "{{ x }}" FROM t', "a quoted identifier"),
    ],
)
def test_value_where_no_parameter_can_go(source: str, where: str) -> None:
    with pytest.raises(TemplateError, match=where):
        template.render_sql(source, {"x": 1})
    assert template.shape_error(source) is not None


def test_undefined_names_raise() -> None:
    with pytest.raises(TemplateError, match="undefined"):
        template.render_sql("SELECT {{ missing }}", {})
    with pytest.raises(TemplateError, match="undefined"):
        template.render_sql("SELECT {{ r.nope }}", {"r": {}})


def test_no_raw_pass_through() -> None:
    with pytest.raises(TemplateError):
        template.render_sql("SELECT {{ x | safe }}", {"x": "1; DROP TABLE t"})
    # escape() returns markup, but markup is still a bound value, never text
    (stmt,) = template.render_sql("SELECT {{ x | e }}", {"x": "1; DROP TABLE t"})
    assert stmt.query == "SELECT %s"


def test_sandbox_blocks_dunder_access() -> None:
    with pytest.raises(TemplateError):
        template.evaluate("x.__class__.__mro__", {"x": 1})


def test_names_used_and_syntax_errors() -> None:
    assert template.names_used(template.Kind.EXPR, "crit.scalar == 0 and range(3)") == {"crit"}
    assert template.syntax_error(template.Kind.SQL, "SELECT 1\nWHERE {{ a + }}") == (
        2,
        "Jinja syntax error: unexpected 'end of print statement'",
    )


def test_split_respects_quotes_and_bodies() -> None:
    text = "SELECT ';'; CREATE FUNCTION f() RETURNS int AS $x$ SELECT 1; $x$ LANGUAGE sql; -- c;\n/* ; */ SELECT \"a;b\""
    assert sqltext.split(text) == [
        "SELECT ';'",
        "CREATE FUNCTION f() RETURNS int AS $x$ SELECT 1; $x$ LANGUAGE sql",
        '-- c;\n/* ; */ SELECT "a;b"',
    ]


HOSTILE = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "'; DROP TABLE victim; --",
            "\\'; DROP TABLE victim; --",
            "$$; DROP TABLE victim; $$",
            "$x$'); DROP TABLE victim; --$x$",
            '"; DROP TABLE victim; --',
            "%s %(x)s %% {{ 1 }} {% raw %}",
            "\\\\\\",
            "\x00",
            "x" * 100_000,
            "é😀\u2028\ufeff",
        ]
    ),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=HOSTILE, name=HOSTILE)
def test_hostile_values_and_names_never_change_the_statement(
    conn: Conn, value: str, name: str
) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS victim (x int)")
    source = "SELECT {{ v }}::text AS v, (SELECT count(*) FROM {{ t | ident }}) AS n"
    try:
        statements = template.render_sql(source, {"v": value, "t": name})
    except TemplateError:
        assert "\x00" in name or "" in name.split(".")  # NUL or an empty part: not a name
        return
    (stmt,) = statements  # one statement, whatever the value holds
    quoted = pgsql.Identifier(*name.split(".")).as_string(conn).replace("%", "%%")
    assert stmt.query == f"SELECT %s::text AS v, (SELECT count(*) FROM {quoted}) AS n"
    assert stmt.params == (value,)
    assert len(sqltext.split(stmt.query)) == 1
    parts = name.split(".")
    if len(parts) == 1 and len(name.encode()) < 63:
        conn.execute(
            pgsql.SQL("CREATE TABLE IF NOT EXISTS {} (x int)").format(pgsql.Identifier(name))
        )
        try:
            row = conn.execute(stmt.query, stmt.params).fetchone()
        except psycopg.DataError:
            assert "\x00" in value  # PostgreSQL text cannot hold NUL; refused, not run
        else:
            assert row == (value, 0)
        conn.execute(
            pgsql.SQL("DROP TABLE {}").format(pgsql.Identifier(name))
        ) if name != "victim" else None
    assert conn.execute("SELECT to_regclass('victim') IS NOT NULL").fetchone() == (True,)


@pytest.mark.parametrize(
    "source",
    [
        "SELECT {{ v }}",
        "SELECT {{ v }}, '100%' AS pct WHERE name LIKE '%x%' AND n > {{ n }}",
        "UPDATE {{ t | ident }} SET x = {{ v }}; DELETE FROM {{ t | ident }} WHERE y = {{ n }}",
        "VACUUM {{ t | ident }}; ANALYZE {{ t | ident }}",
        "SET lock_timeout = {{ v | literal }}",
        "SELECT {{ row.a }} /* {{ x }} is not an output in a comment? */",
        "SELECT $$ {{ n }} $$ AS body",
        "SELECT {{ n }} -- trailing % comment\n;\nSELECT {{ v }}",
        "SELECT 1 AS a;\nSELECT {{ t | ident }} FROM x",
    ],
)
def test_the_compiled_fast_path_renders_as_jinja_does(source: str) -> None:
    context = {"v": "it's 100%", "n": 7, "t": "public.my table", "row": {"a": 1}, "x": 2}
    try:
        expected = template.render_sql_with_jinja(source, context)
    except TemplateError as exc:
        with pytest.raises(TemplateError) as info:
            template.render_sql(source, context)
        assert str(info.value) == str(exc)
        return
    assert sqlprogram.program(source) is not None, "a fast-path template"
    assert template.render_sql(source, context) == expected


@pytest.mark.parametrize(
    ("sql", "found"),
    [
        ("SELECT 1", None),
        ("SELECT CASE WHEN a THEN 1 END FROM t", None),
        ("SELECT 'COMMIT; BEGIN' AS s -- END", None),
        ("DO $$ BEGIN RAISE NOTICE 'x'; END $$", None),
        ("SET statement_timeout = 5; SELECT 1", None),
        ("commit", "commit"),
        ("SELECT 1 /* end */; END", "END"),
        ("BEGIN READ WRITE; INSERT INTO t VALUES (1)", "BEGIN READ WRITE"),
        ("START TRANSACTION", "START TRANSACTION"),
        (
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
        ),
        ("SET LOCAL transaction_read_only = off", "SET LOCAL transaction_read_only = off"),
        ("RESET ALL", "RESET ALL"),
        (
            "DO $$ BEGIN PERFORM set_config('default_transaction_read_only', 'off', false); END $$",
            "DO $$ BEGIN PERFORM set_config('default_transaction_read_onl",
        ),
    ],
)
def test_statements_that_would_leave_a_read_only_transaction(sql: str, found: str | None) -> None:
    assert sqltext.escapes_read_only(sql) == found
