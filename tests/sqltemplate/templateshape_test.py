"""The allow-list and the lexer's proof, tried on generated templates: whatever
shape validation accepts, no value changes what the statement does."""

from __future__ import annotations

import contextlib

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook.errors import TemplateError
from runbook.sqltemplate import template

Conn = psycopg.Connection[tuple[object, ...]]

# The author's text: every lexical trap, never a harmful statement of its own.
TEXT = [
    "SELECT ",
    "1",
    " ",
    "'",
    '"',
    "/*",
    "*/",
    "--",
    "\n",
    "$$",
    "$a$",
    "E",
    "U&",
    ";",
    ",",
    "-",
    ".",
]
OUTPUTS = ["{{ t | literal }}", "{{ t | ident }}", "{{ v }}", "{{ t }}"]
VALUES = [
    "*/; DROP TABLE keep; /*",
    "\n; DROP TABLE keep; --",
    "$$; DROP TABLE keep; $$",
    "$a$; DROP TABLE keep; $a$",
    "'; DROP TABLE keep; --",
    '"; DROP TABLE keep; --',
    "\\'; DROP TABLE keep; --",
]


@st.composite
def templates(draw: st.DrawFn) -> str:
    pieces = draw(st.lists(st.sampled_from(TEXT + OUTPUTS), min_size=1, max_size=10))
    wrap = draw(st.sampled_from(["", "if", "for"]))
    if wrap and len(pieces) > 1:
        i = draw(st.integers(0, len(pieces) - 1))
        j = draw(st.integers(i, len(pieces)))
        opener = "{% if v %}" if wrap == "if" else "{% for r in rows %}"
        closer = "{% endif %}" if wrap == "if" else "{% endfor %}"
        pieces = [*pieces[:i], opener, *pieces[i:j], closer, *pieces[j:]]
    return "SELECT 1; " + "".join(pieces)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(source=templates(), value=st.sampled_from(VALUES))
def test_an_accepted_shape_never_runs_a_value_as_sql(conn: Conn, source: str, value: str) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS keep (x int)")
    if template.syntax_error(template.Kind.SQL, source) or template.shape_error(source):
        return  # refused at validation
    try:
        statements = template.render_sql(source, {"t": value, "v": 1, "rows": [1, 2, 3]}, conn)
    except TemplateError:
        return  # refused at run time, before anything was sent
    for stmt in statements:
        with contextlib.suppress(psycopg.Error):
            if stmt.params is None:
                conn.execute(stmt.display.encode())
            else:
                conn.execute(stmt.query, stmt.params)
    assert conn.execute("SELECT to_regclass('keep') IS NOT NULL").fetchone() == (True,), source


def test_too_many_shapes_are_refused_not_half_checked() -> None:
    nine = "".join(f"{{% if v %}} AND c{i} = {{{{ v }}}}{{% endif %}}" for i in range(9))
    assert template.shape_error("SELECT 1 WHERE true" + nine) is None
    many = "".join(f"{{% if v %}} AND c{i} = {{{{ v }}}}{{% endif %}}" for i in range(40))
    assert "shapes" in (template.shape_error("SELECT 1 WHERE true" + many) or "")
