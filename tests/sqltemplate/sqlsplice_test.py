"""Fragments in the final statement: whatever path built it, `| literal` and
`| ident` stand as whole tokens, or the statement is refused before it is sent."""

from __future__ import annotations

import contextlib

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook.errors import TemplateError
from runbook.sqltemplate import sqlprogram, sqlsplice, template

Conn = psycopg.Connection[tuple[object, ...]]

# Shapes validation accepts: whether they are safe depends on the value too
# (a literal holding the body's own dollar tag would end the body).
IN_BODY = "DO $$ BEGIN PERFORM {{ t | literal }}; END $$"
TAGGED = "DO $x$ BEGIN PERFORM {{ t | literal }}; END $x$"
SET = "SET application_name = {{ t | literal }}"
NAMED = "SELECT count(*) FROM {{ s | ident }}.{{ t | ident }}"
JINJA = "{% if true %}{% endif %}"  # forces the general (Jinja) path


@pytest.mark.parametrize("source", [IN_BODY, JINJA + IN_BODY])
def test_a_literal_that_would_end_its_body_is_refused(source: str) -> None:
    assert template.shape_error(source) is None  # the shape is fine
    with pytest.raises(TemplateError, match=r"whole SQL token|run into|inside"):
        template.render_sql(source, {"t": "$$; DROP TABLE keep; $$"})
    (stmt,) = template.render_sql(source, {"t": "it's $x$ fine"})
    assert stmt.query == "DO $$ BEGIN PERFORM 'it''s $x$ fine'; END $$"


def test_the_fast_and_jinja_paths_agree() -> None:
    for source in (IN_BODY, SET, NAMED):
        for value in ("a", "$$", "*/", "\n--", "'", '"', "\\"):
            context = {"t": value, "s": "public"}
            results = []
            for src in (source, JINJA + source):
                try:
                    results.append(template.render_sql(src, context))
                except TemplateError as exc:
                    results.append(type(exc))
            assert results[0] == results[1], (source, value)
    assert sqlprogram.program(IN_BODY) is not None


@pytest.mark.parametrize(
    ("text", "fragment", "ok"),
    [
        ("SELECT 'a'", "'a'", True),
        ("SELECT E'a'", "'a'", False),
        ("SELECT 'a''b'", "'a'", False),
        ("SELECT 'a'::text", "'a'", True),
        ('SELECT x."y"', '"y"', True),
        ("SELECT 1 --'a'", "'a'", False),
        ("SELECT -5", "-5", True),
        ("SELECT 1 - -5", " -5", True),
        ("DO $$ SELECT 'a'; $$", "'a'", True),
        ("DO $$ SELECT '$$'; $$", "'$$'", False),
        ("DO $$ SELECT /* 'a' */ 1; $$", "'a'", False),
    ],
)
def test_whole_token_rule(text: str, fragment: str, ok: bool) -> None:
    start = text.index(fragment)
    fault = sqlsplice.fault(text, start, start + len(fragment), "x", fragment.startswith('"'))
    assert (fault is None) == ok, fault


HOSTILE = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["$$", "$$; DROP TABLE keep; $$", "*/ DROP TABLE keep; /*", "\n; DROP TABLE keep; --"]
    ),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=HOSTILE)
def test_hostile_literals_never_change_the_statement(conn: Conn, value: str) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS keep (x int)")
    for source in (IN_BODY, TAGGED, SET, JINJA + IN_BODY):
        try:
            statements = template.render_sql(source, {"t": value}, conn)
        except TemplateError:
            continue
        (stmt,) = statements
        # A failing statement is fine; another statement is not.
        with contextlib.suppress(psycopg.Error):
            conn.execute(stmt.display.encode())
    assert conn.execute("SELECT to_regclass('keep') IS NOT NULL").fetchone() == (True,)
