"""The lexer reads strings, bodies and comments where PostgreSQL does: a
fragment spliced where the two disagree would stand in code for one and in a
string for the other."""

from __future__ import annotations

import pytest

from runbook.sqltemplate import sqltext


def _spans(sql: str, backslashes: bool = False) -> list[tuple[str, str]]:
    return [(r.kind, sql[r.start : r.end]) for r in sqltext.regions(sql, backslashes)]


@pytest.mark.parametrize(
    ("sql", "spans"),
    [
        # A string, a newline, a string: one constant, read the first one's way.
        ("SELECT E'a'\n'\\' , 'x' -- '\n", [("string", "'a'\n'\\' , '"), ("string", "' -- '")]),
        (
            "SELECT 'a' -- c\n -- d\n 'b', 'c'",
            [("string", "'a' -- c\n -- d\n 'b'"), ("string", "'c'")],
        ),
        # On one line they are two (and PostgreSQL refuses them).
        ("SELECT 'a' 'b'", [("string", "'a'"), ("string", "'b'")]),
        # A dollar quote opens after a number, a parameter or another quote…
        ("SELECT 1$a$ x $a$", [("dollar", "$a$ x $a$")]),
        ("SELECT $1$a$ x $a$", [("dollar", "$a$ x $a$")]),
        ("SELECT $a$x$a$$b$ y $b$", [("dollar", "$a$x$a$"), ("dollar", "$b$ y $b$")]),
        # … but not inside a word.
        ("SELECT a$b$ c", []),
    ],
)
def test_regions_are_where_postgresql_reads_them(sql: str, spans: list[tuple[str, str]]) -> None:
    assert _spans(sql) == spans


def test_with_backslashes_a_plain_string_reads_escapes_and_a_bit_string_does_not() -> None:
    plain = "SELECT 'C:\\', 1"
    assert _spans(plain) == [("string", "'C:\\'")]
    assert _spans(plain, backslashes=True) == [("string", "'C:\\', 1")]  # never ends
    bits = "SELECT B'1\\', 'y'"
    assert _spans(bits, backslashes=True) == [("string", "'1\\'"), ("string", "'y'")]


def test_a_long_run_of_blanks_after_a_string_is_read_once() -> None:
    # The continuation pattern has no nested repetition to backtrack through.
    sql = "SELECT 'a'" + " \n" * 50_000 + "x"
    assert _spans(sql) == [("string", "'a'")]
