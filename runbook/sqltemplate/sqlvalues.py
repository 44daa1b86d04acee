"""How template values reach SQL: bound parameters, or quoted fragments.

A rendered SQL template is first a *shape*: its text with every `{{ value }}`
replaced by a marker, `\\x00<n>\\x00` for a value to bind, `\\x01<n>\\x01` for a
fragment made by `| literal` and `\\x02<n>\\x02` for one made by `| ident` (quoted
by psycopg, spliced as text). The shape is split into statements, each checked
that no value sits inside quotes, a dollar-quoted body or a comment (it could
not be bound there) and that every fragment stands as a whole token in code
(runbook.sqltemplate.sqlsplice); each becomes a RenderedSql: its text with PostgreSQL's `$1`
placeholders (what the server is sent) and with psycopg's `%s` (for mogrify),
and the values to bind. The fragments' own text is checked again in the final
statement, whatever path built it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import psycopg
from psycopg import sql as pgsql

from runbook.errors import TemplateError
from runbook.sqltemplate import sqlsplice, sqltext, tmplfast

PARAM = "\x00"
FRAGMENT = "\x01"
NAME = "\x02"  # a fragment that is an identifier
# The author's text can never hold these: they would read as outputs.
MARKERS = frozenset(PARAM + FRAGMENT + NAME)
MARK = re.compile("([\x00\x01\x02])([0-9]+)[\x00\x01\x02]")


class Fragment:
    """SQL text made by `ident` or `literal`: quoted by psycopg, spliced, never bound."""

    __slots__ = ("composable",)

    def __init__(self, composable: pgsql.Composable) -> None:
        self.composable = composable

    def text(self, conn: Any) -> str:
        """The quoted SQL text, as the connection spells it. Only where the
        session reads strings as the lexer does (runbook.sqltemplate.sqltext):
        with standard_conforming_strings off, 'C:\' does not end at its
        second quote, and the text the lexer took for code around a fragment
        would be inside a string on the server (its quotes then ending it)."""
        if conn is not None and conn.info.parameter_status("standard_conforming_strings") != "on":
            raise TemplateError(
                f"{self.what} needs standard_conforming_strings on, as runbook connects; "
                "this session has turned it off (a SET in an earlier step?)"
            )
        try:
            return self.composable.as_string(conn)
        except psycopg.Error as exc:
            raise TemplateError(f"{self.what} cannot quote this value: {exc}") from None

    @property
    def marker(self) -> str:
        return NAME if isinstance(self.composable, pgsql.Identifier) else FRAGMENT

    @property
    def what(self) -> str:
        return "{{ … | ident }}" if self.marker == NAME else "{{ … | literal }}"

    def __str__(self) -> str:
        return self.composable.as_string(None)


def ident(value: Any) -> Fragment:
    if isinstance(value, Fragment):
        raise TemplateError("`ident` was given SQL text; give it a name")
    parts: Sequence[Any] = value if isinstance(value, list | tuple) else str(value).split(".")
    names = [str(p) for p in parts]
    if not names or any(not n or "\x00" in n for n in names):
        raise TemplateError(f"{value!r} is not a valid SQL identifier")
    return Fragment(pgsql.Identifier(*names))


def literal(value: Any) -> Fragment:
    if isinstance(value, Fragment):
        raise TemplateError("`literal` was given SQL text; give it a value")
    if isinstance(value, str) and "\x00" in value:
        raise TemplateError("a SQL literal cannot contain a NUL character")
    return Fragment(pgsql.Literal(value))


class RenderedSql(NamedTuple):
    """A SQL statement and its bound values, in two spellings of the same text.

    A named tuple: every step makes one or more (a frozen dataclass's __init__
    costs three object.__setattr__ calls)."""

    # With %s placeholders (and % doubled), for psycopg's client-side mogrify.
    query: str
    params: tuple[Any, ...] | None
    # With PostgreSQL's own $1, $2 …: what the server is sent (db.Session runs a
    # raw cursor), and what people and the journal see.
    display: str


def shape(parts: tmplfast.Parts) -> str:
    """The rendered shape of a fast-path template, every output a marker (values unknown)."""
    out = []
    for i, part in enumerate(parts):
        if isinstance(part, str):
            out.append(part)
        else:
            mark = PARAM if part.filter is None else NAME if part.filter == "ident" else FRAGMENT
            out.append(f"{mark}{i}{mark}")
    return "".join(out)


_REGIONS = {
    "string": "a quoted string",
    "identifier": "a quoted identifier",
    "dollar": "a dollar-quoted body",
    "comment": "a comment",
}
_FIXES = {
    "string": "put it outside the quotes ('%' || {{ x }} || '%')",
    "identifier": "for a name write {{ x | ident }}, without the double quotes",
    "dollar": (
        "a body takes no parameters: write {{ x | literal }} for a constant there, or pass "
        "the value with set_config('runbook.x', {{ x }}, true) and read current_setting('runbook.x')"
    ),
    "comment": "take it out of the comment (a comment cannot hold a value)",
}
_WHAT = {FRAGMENT: "{{ … | literal }}", NAME: "{{ … | ident }}"}


@functools.lru_cache(maxsize=4096)
def statements(shaped: str) -> tuple[str, ...]:
    """Split a rendered shape and check where its outputs stand: no value inside
    quotes, a body or a comment, every fragment a whole token in code."""
    for _, problem in marker_faults(shaped):
        raise TemplateError(problem)
    return tuple(sqltext.split(shaped))


def marker_faults(shaped: str) -> Iterator[tuple[int, str]]:
    """(output number, why) of each output of a shape that stands where it may not."""
    spans = sqltext.regions(shaped)
    for match in MARK.finditer(shaped):
        kind = match.group(1)
        number = int(match.group(2))
        if kind != PARAM:
            problem = sqlsplice.fault(shaped, match.start(), match.end(), _WHAT[kind], kind == NAME)
            if problem:
                yield number, problem
            continue
        region = sqltext.region_at(spans, match.start())
        if region is not None:
            yield (
                number,
                (
                    f"a {{{{ value }}}} inside {_REGIONS[region.kind]} cannot be a bound parameter; "
                    + _FIXES[region.kind]
                ),
            )


def check_spliced(text: str, spliced: list[tuple[int, int, Fragment]]) -> None:
    """Every fragment, its own text in place, stands as a whole token of `text`."""
    for start, end, fragment in spliced:
        problem = sqlsplice.fault(text, start, end, fragment.what, fragment.marker == NAME)
        if problem:
            raise TemplateError(problem)


def bind_statement(
    shaped: str, params: list[Any], texts: list[str], fragments: list[Fragment]
) -> RenderedSql:
    """One statement of a shape: markers become %s (values) or the fragments' text."""
    query: list[str] = []
    display: list[str] = []
    values: list[Any] = []
    spliced: list[tuple[int, int, Fragment]] = []
    size = 0
    last = 0
    for match in MARK.finditer(shaped):
        static = shaped[last : match.start()]
        query.append(static.replace("%", "%%"))
        display.append(static)
        size += len(static)
        index = int(match.group(2))
        if match.group(1) == PARAM:
            values.append(params[index])
            query.append("%s")
            shown = f"${len(values)}"
        else:
            shown = texts[index]
            query.append(shown.replace("%", "%%"))
            spliced.append((size, size + len(shown), fragments[index]))
        display.append(shown)
        size += len(shown)
        last = match.end()
    tail = shaped[last:]
    query.append(tail.replace("%", "%%"))
    display.append(tail)
    text = "".join(display)
    check_spliced(text, spliced)
    if not values:
        return RenderedSql(text, None, text)
    return RenderedSql("".join(query), tuple(values), text)
