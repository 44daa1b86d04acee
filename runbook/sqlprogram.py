"""Compiled fast-path SQL templates: `{{ name.attr }}` outputs, no Jinja at run time.

A template that tmplfast can parse is compiled once into a Program: its outputs,
its shape and, per statement, its pieces in order: static text (as sent, with %
doubled, and as shown) or the index of an output. A statement whose outputs are
all bound values is also kept ready-made: its text with %s and with $n, and
which outputs fill the values. Running a program resolves the outputs and
fills them in, which gives what rendering with Jinja would (template_test
compares the two on hostile values).

Compiling costs about 0.2 million instructions a template, more than the rest
of a step; `dump` and `prime` carry compiled programs from the run that checked
a playbook to the runs after it (runbook.checks.remembered).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from runbook import tmplfast
from runbook.errors import TemplateError
from runbook.sqlvalues import (
    MARK,
    Fragment,
    RenderedSql,
    check_spliced,
    ident,
    literal,
    shape,
    statements,
)

Piece = tuple[str, str] | int
Pieces = tuple[Piece, ...]
Ready = tuple[str, str, tuple[int, ...]]


class Program(NamedTuple):
    outputs: tuple[tuple[int, tmplfast.Output], ...]  # with their index in parts
    shaped: str  # the unsplit text, for a template with nothing to bind
    statements: tuple[Pieces, ...] | None  # None: split `shaped` when needed
    ready: tuple[Ready, ...] | None  # when no output is spliced (no ident/literal)


def _pieces(shaped: str) -> Pieces:
    pieces: list[Piece] = []
    last = 0
    for match in MARK.finditer(shaped):
        static = shaped[last : match.start()]
        if static:
            pieces.append((static.replace("%", "%%"), static))
        pieces.append(int(match.group(2)))
        last = match.end()
    tail = shaped[last:]
    if tail:
        pieces.append((tail.replace("%", "%%"), tail))
    return tuple(pieces)


_CONTROL = frozenset("\x00\x01\x02")  # the shape's markers: never the author's text


class _OwnIndex(dict[int, int]):
    def __missing__(self, key: int) -> int:
        return key


_OWN_INDEX = _OwnIndex()


def _ready(pieces: Pieces) -> Ready:
    # Each output stands for itself: the bound "values" come out as their order.
    query, display, order = _assemble(pieces, _OWN_INDEX, None)
    return "".join(query), "".join(display), tuple(order)


def _split(shaped: str) -> tuple[Pieces, ...]:
    return tuple(_pieces(s) for s in statements(shaped))


def _compile(source: str) -> Program | None:
    parts = tmplfast.parse_template(source, True)
    if parts is None or any(isinstance(p, str) and _CONTROL & set(p) for p in parts):
        return None  # Jinja's path renders it, or refuses it with its reasons
    shaped = shape(parts)
    split = _split(shaped)
    outputs = tuple((i, part) for i, part in enumerate(parts) if not isinstance(part, str))
    plain = all(part.filter is None for _, part in outputs)
    ready = tuple(_ready(s) for s in split) if plain and outputs else None
    return Program(outputs, shaped, split, ready)


# Compiled programs by source; primed from the check cache (see dump/prime).
PROGRAMS: tmplfast.Memo[Program | None] = tmplfast.Memo(_compile, 4096)


def program(source: str) -> Program | None:
    """Split and shape-check a fast-path template once; None if Jinja must render it."""
    return PROGRAMS[source]  # a shape error raises, and is not kept


def run(
    prog: Program, context: Mapping[str, Any], conn: Any, env: SandboxedEnvironment
) -> list[RenderedSql]:
    """Values bound, names spliced: what rendering with Jinja would give."""
    values: dict[int, Any] = {}
    try:
        for i, part in prog.outputs:
            value = part.ref.resolve(env, context)
            if part.filter == "ident":
                value = ident(value)
            elif part.filter == "literal":
                value = literal(value)
            values[i] = value
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"undefined: {exc.message}") from None
    if prog.ready is not None:
        for value in values.values():
            if isinstance(value, Fragment):
                break  # a value that is SQL text (never from YAML): the general way
        else:
            return [
                RenderedSql(query, tuple([values[i] for i in order]), display)
                for query, display, order in prog.ready
            ]
    if all(isinstance(v, Fragment) for v in values.values()):
        # No values to bind: the text goes as written, in one simple query.
        text = "".join(_assemble(_pieces(prog.shaped), values, conn)[1])
        return [RenderedSql(text, None, text)]
    out = []
    split = prog.statements
    if split is None:
        split = _split(prog.shaped)
    for pieces in split:
        query, display, params = _assemble(pieces, values, conn)
        shown = "".join(display)
        if params:
            out.append(RenderedSql("".join(query), tuple(params), shown))
        else:
            out.append(RenderedSql(shown, None, shown))
    return out


def _assemble(
    pieces: Pieces, values: Mapping[int, Any], conn: Any
) -> tuple[list[str], list[str], list[Any]]:
    """(text as sent, text as shown, bound values) of one run of pieces; every
    fragment checked to stand as a whole token in the text as shown."""
    query: list[str] = []
    display: list[str] = []
    params: list[Any] = []
    spliced: list[tuple[int, int, Fragment]] = []
    size = 0
    for piece in pieces:
        if isinstance(piece, tuple):
            query.append(piece[0])
            display.append(piece[1])
            size += len(piece[1])
            continue
        value = values[piece]
        if isinstance(value, Fragment):
            text = value.composable.as_string(conn)
            query.append(text.replace("%", "%%"))
            spliced.append((size, size + len(text), value))
        else:
            params.append(value)
            query.append("%s")
            text = f"${len(params)}"
        display.append(text)
        size += len(text)
    if spliced:
        check_spliced("".join(display), spliced)
    return query, display, params


def dump(sources: Iterable[str]) -> dict[str, Any]:
    """The fast-path SQL templates among `sources`, compiled, as JSON-safe data."""
    out: dict[str, Any] = {}
    for source in sources:
        if "{{" not in source:
            continue  # not a template, or not one with outputs
        try:
            prog = program(source)
        except TemplateError:
            continue
        if prog is None:
            continue
        out[source] = {
            "outputs": [[i, tmplfast.dump_ref(part.ref), part.filter] for i, part in prog.outputs],
            "shaped": prog.shaped,
            # Derived again from `shaped` if ever needed: a template with a
            # ready-made text only needs it for SQL-text values (never from YAML).
            "statements": None
            if prog.ready is not None
            else [
                [list(p) if isinstance(p, tuple) else p for p in s]
                for s in prog.statements or _split(prog.shaped)
            ],
            "ready": None
            if prog.ready is None
            else [[query, shown, list(order)] for query, shown, order in prog.ready],
        }
    return out


def prime(dumped: Mapping[str, Any]) -> None:
    """Compiled templates from an earlier run (dump). Raises ValueError (or
    KeyError, TypeError) on anything malformed, before priming any."""
    programs: dict[str, Program] = {}
    for source, data in dumped.items():
        if source in PROGRAMS:
            continue  # compiled already (a process that runs playbooks again)
        outputs = []
        for i, ref, filter_ in data["outputs"]:
            if not isinstance(i, int) or filter_ not in (None, "ident", "literal"):
                raise ValueError("not a compiled template")
            outputs.append((i, tmplfast.Output(tmplfast.load_ref(ref), filter_)))
        ready = data["ready"]
        if data["statements"] is None and ready is None:
            raise ValueError("a compiled template without its statements")
        split = (
            None
            if data["statements"] is None
            else tuple(_load_pieces(s) for s in data["statements"])
        )
        programs[source] = Program(
            tuple(outputs),
            str(data["shaped"]),
            split,
            None
            if ready is None
            else tuple((str(q), str(d), tuple(int(o) for o in order)) for q, d, order in ready),
        )
    PROGRAMS.update(programs)


def _load_pieces(data: list[Any]) -> Pieces:
    pieces: list[Piece] = []
    for piece in data:
        if isinstance(piece, int):
            pieces.append(piece)
        else:
            sent, shown = piece
            pieces.append((str(sent), str(shown)))
    return tuple(pieces)
