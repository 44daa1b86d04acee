"""How template values reach SQL: bound parameters, or quoted fragments.

A rendered SQL template is first a *shape*: its text with every `{{ value }}`
replaced by a marker, `\\x00<n>\\x00` for a value to bind and `\\x01<n>\\x01` for a
fragment made by `| ident` or `| literal` (quoted by psycopg, spliced as text).
The shape is split into statements, each checked that no value sits inside
quotes, a dollar-quoted body or a comment (it could not be bound there), and
each becomes a RenderedSql: its text with PostgreSQL's `$1` placeholders (what
the server is sent) and with psycopg's `%s` (for mogrify), and the values to bind.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from psycopg import sql as pgsql

from runbook import sqltext, tmplfast
from runbook.errors import TemplateError

PARAM = "\x00"
FRAGMENT = "\x01"
MARK = re.compile("([\x00\x01])([0-9]+)[\x00\x01]")


class Fragment:
    """SQL text made by `ident` or `literal`: quoted by psycopg, spliced, never bound."""

    __slots__ = ("composable",)

    def __init__(self, composable: pgsql.Composable) -> None:
        self.composable = composable

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
        elif part.filter is None:
            out.append(f"{PARAM}{i}{PARAM}")
        else:
            out.append(f"{FRAGMENT}{i}{FRAGMENT}")
    return "".join(out)


_REGIONS = {
    "string": "a quoted string",
    "identifier": "a quoted identifier",
    "dollar": "a dollar-quoted body",
    "comment": "a comment",
}


@functools.lru_cache(maxsize=4096)
def statements(shaped: str) -> tuple[str, ...]:
    """Split a rendered shape and check no placeholder sits inside quotes or a body."""
    spans = sqltext.regions(shaped)
    for match in MARK.finditer(shaped):
        if match.group(1) != PARAM:
            continue
        region = sqltext.region_at(spans, match.start())
        if region is not None:
            fix = (
                "put it outside the quotes ('%' || {{ x }} || '%')"
                if region.kind == "string"
                else "use {{ x | literal }} (or | ident for names)"
            )
            raise TemplateError(
                f"a {{{{ value }}}} inside {_REGIONS[region.kind]} cannot be a bound parameter; {fix}"
            )
    return tuple(sqltext.split(shaped, spans))


def bind_statement(shaped: str, params: list[Any], texts: list[str]) -> RenderedSql:
    """One statement of a shape: markers become %s (values) or the fragments' text."""
    query: list[str] = []
    display: list[str] = []
    values: list[Any] = []
    last = 0
    for match in MARK.finditer(shaped):
        static = shaped[last : match.start()]
        query.append(static.replace("%", "%%"))
        display.append(static)
        index = int(match.group(2))
        if match.group(1) == PARAM:
            values.append(params[index])
            query.append("%s")
            display.append(f"${len(values)}")
        else:
            query.append(texts[index].replace("%", "%%"))
            display.append(texts[index])
        last = match.end()
    tail = shaped[last:]
    query.append(tail.replace("%", "%%"))
    display.append(tail)
    if not values:
        text = "".join(display)
        return RenderedSql(text, None, text)
    return RenderedSql("".join(query), tuple(values), "".join(display))
