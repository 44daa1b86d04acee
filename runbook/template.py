"""Sandboxed Jinja2 for SQL, text and expressions.

SQL templates never paste values: `{{ expr }}` renders to a placeholder and its
value becomes a bound parameter. Identifiers go through `| ident` (quoted by
psycopg's `sql.Identifier`) and constants where PostgreSQL takes no parameters
through `| literal` (quoted by psycopg with the connection's settings). There is
no raw pass-through filter. Undefined names raise (StrictUndefined).
"""

from __future__ import annotations

import difflib
import enum
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jinja2
import jinja2.meta
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from psycopg import sql as pgsql

from runbook import sqltext, tmplfast
from runbook.errors import TemplateError

PARAMS_KEY = "__runbook_binds__"
_PARAM = "\x00"
_FRAGMENT = "\x01"
_MARK = re.compile("([\x00\x01])([0-9]+)[\x00\x01]")


class Kind(enum.Enum):
    SQL = "sql"
    TEXT = "text"
    EXPR = "expression"


class Fragment:
    """SQL text made by `ident` or `literal`: quoted by psycopg, spliced, never bound."""

    __slots__ = ("composable",)

    def __init__(self, composable: pgsql.Composable) -> None:
        self.composable = composable

    def __str__(self) -> str:
        return self.composable.as_string(None)


def _ident(value: Any) -> Fragment:
    if isinstance(value, Fragment):
        raise TemplateError("`ident` was given SQL text; give it a name")
    parts: Sequence[Any] = value if isinstance(value, list | tuple) else str(value).split(".")
    names = [str(p) for p in parts]
    if not names or any(not n or "\x00" in n for n in names):
        raise TemplateError(f"{value!r} is not a valid SQL identifier")
    return Fragment(pgsql.Identifier(*names))


def _literal(value: Any) -> Fragment:
    if isinstance(value, Fragment):
        raise TemplateError("`literal` was given SQL text; give it a value")
    if isinstance(value, str) and "\x00" in value:
        raise TemplateError("a SQL literal cannot contain a NUL character")
    return Fragment(pgsql.Literal(value))


class _Collector:
    """Per-render list of bound values and spliced fragments."""

    __slots__ = ("fragments", "params")

    def __init__(self) -> None:
        self.params: list[Any] = []
        self.fragments: list[Fragment] = []


@jinja2.pass_context
def _bind(context: jinja2.runtime.Context, value: Any) -> str:
    collector: _Collector | None = context.get(PARAMS_KEY)
    if collector is None:  # a nested render outside run_sql (should not happen)
        raise TemplateError("SQL template rendered without a parameter collector")
    if isinstance(value, Fragment):
        collector.fragments.append(value)
        return f"{_FRAGMENT}{len(collector.fragments) - 1}{_FRAGMENT}"
    if isinstance(value, jinja2.Undefined):
        str(value)  # raises UndefinedError with jinja's message
    collector.params.append(value)
    return f"{_PARAM}{len(collector.params) - 1}{_PARAM}"


def _make_env(*, for_sql: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_bind if for_sql else None,
    )
    if for_sql:
        env.filters["ident"] = _ident
        env.filters["literal"] = _literal
    # No `safe`-style pass-through: in SQL it would paste raw text.
    env.filters.pop("safe", None)
    return env


SQL_ENV = _make_env(for_sql=True)
TEXT_ENV = _make_env(for_sql=False)
# Shell command lines bind values as environment variables, like SQL parameters.
SHELL_ENV = _make_env(for_sql=True)
SHELL_ENV.filters.pop("ident")
SHELL_ENV.filters.pop("literal")
# For checking a template's shape before any value exists: names are lenient.
_SHAPE_ENV = _make_env(for_sql=True)
_SHAPE_ENV.undefined = jinja2.ChainableUndefined
_SHAPE_ENV.filters["ident"] = lambda v: _ident("x" if isinstance(v, jinja2.Undefined) else v)
_SHAPE_ENV.filters["literal"] = lambda v: _literal(None if isinstance(v, jinja2.Undefined) else v)
BUILTIN_NAMES = frozenset(TEXT_ENV.globals) | {"true", "false", "none", "True", "False", "None"}


def render_shell(source: str, context: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """A /bin/sh command line whose {{ values }} arrive as "$RUNBOOK_V<n>" variables."""
    collector = _Collector()
    try:
        shaped = SHELL_ENV.from_string(source).render({**context, PARAMS_KEY: collector})
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"undefined: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise TemplateError(str(exc)) from None
    env = {f"RUNBOOK_V{i}": "" if v is None else str(v) for i, v in enumerate(collector.params)}
    return _MARK.sub(lambda m: f'"${{RUNBOOK_V{m.group(2)}}}"', shaped), env


@dataclass(frozen=True)
class RenderedSql:
    """A SQL statement ready for psycopg: `%s` placeholders and their values."""

    query: str
    params: tuple[Any, ...] | None
    # The text with placeholders shown as $1, $2 … for people and the journal.
    display: str


@functools.lru_cache(maxsize=4096)
def _compile(kind: Kind, source: str) -> jinja2.Template:
    env = SQL_ENV if kind is Kind.SQL else TEXT_ENV
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error: {exc.message}") from None


@functools.lru_cache(maxsize=4096)
def _compile_expression(source: str) -> Any:
    try:
        return TEXT_ENV.compile_expression(source, undefined_to_none=False)
    except jinja2.TemplateSyntaxError as exc:
        hint = " (expressions take no {{ }})" if "{" in source else ""
        raise TemplateError(f"expression syntax error: {exc.message}{hint}") from None


def syntax_error(kind: Kind, source: str) -> tuple[int, str] | None:
    """(line inside the source, message) of a Jinja syntax error, or None."""
    if _simple(kind, source) is not None:
        return None
    env = SQL_ENV if kind is Kind.SQL else TEXT_ENV
    text = "{{ " + source + " }}" if kind is Kind.EXPR else source
    try:
        tree = env.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        hint = " (expressions take no {{ }})" if kind is Kind.EXPR and "{" in source else ""
        return (exc.lineno or 1), f"Jinja syntax error: {exc.message}{hint}"
    return _unknown_name(env, tree)


def _unknown_name(env: jinja2.Environment, tree: jinja2.nodes.Template) -> tuple[int, str] | None:
    # Jinja looks filters and tests up only when it renders, so an unknown one
    # would pass validation and fail the run halfway: look them up now.
    for node in tree.find_all((jinja2.nodes.Filter, jinja2.nodes.Test)):
        is_filter = isinstance(node, jinja2.nodes.Filter)
        named = [(node.name, is_filter)]
        # select('odd'), selectattr('x', 'odd'), map('upper') name a test or filter.
        position = _NAMED_BY_ARGUMENT.get(node.name) if is_filter else None
        if position is not None and len(node.args) > position[0]:
            arg = node.args[position[0]]
            if isinstance(arg, jinja2.nodes.Const) and isinstance(arg.value, str):
                named.append((arg.value, position[1]))
        for name, a_filter in named:
            known = env.filters if a_filter else env.tests
            if name not in known:
                what = "filter" if a_filter else "test"
                near = difflib.get_close_matches(name, list(known), n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                return node.lineno or 1, f"unknown Jinja {what} {name!r}{hint}"
    return None


# Filters whose argument names another: position, and whether it names a filter.
_NAMED_BY_ARGUMENT = {
    "select": (0, False),
    "reject": (0, False),
    "selectattr": (1, False),
    "rejectattr": (1, False),
    "map": (0, True),
}


def names_used(kind: Kind, source: str) -> set[str]:
    """Top-level names a template or expression reads (syntax must be valid)."""
    simple = _simple(kind, source)
    if isinstance(simple, tmplfast.Comparison):
        return {simple.ref.root}
    if simple is not None:
        return tmplfast.names(simple)
    env = SQL_ENV if kind is Kind.SQL else TEXT_ENV
    text = "{{ " + source + " }}" if kind is Kind.EXPR else source
    tree = env.parse(text)
    return set(jinja2.meta.find_undeclared_variables(tree)) - BUILTIN_NAMES


def _simple(kind: Kind, source: str) -> tmplfast.Parts | tmplfast.Comparison | None:
    if kind is Kind.EXPR:
        return tmplfast.parse_expression(source)
    return tmplfast.parse_template(source, kind is Kind.SQL)


def shape_error(source: str) -> str | None:
    """Why the SQL's shape is wrong whatever the values (a value inside quotes), or None."""
    if not is_template(source):
        return None
    parts = tmplfast.parse_template(source, True)
    try:
        if parts is not None:
            _statements(_shape(parts))
            return None
        shaped = _SHAPE_ENV.from_string(source).render({PARAMS_KEY: _Collector()})
        _statements(shaped)
    except TemplateError as exc:
        return str(exc)
    except Exception:  # names are unknown here; runtime rendering reports the rest
        return None
    return None


def is_template(source: str) -> bool:
    return "{{" in source or "{%" in source or "{#" in source


def render_text(source: str, context: Mapping[str, Any]) -> str:
    if not is_template(source):
        return source
    try:
        parts = tmplfast.parse_template(source, False)
        if parts is not None:
            return "".join(
                p if isinstance(p, str) else str(p.ref.resolve(TEXT_ENV, context)) for p in parts
            )
        return _compile(Kind.TEXT, source).render(context)
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"undefined: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise TemplateError(str(exc)) from None
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise TemplateError(f"in `{source}`: {exc}") from None


def evaluate(source: str, context: Mapping[str, Any]) -> Any:
    try:
        simple = tmplfast.parse_expression(source)
        if simple is not None:
            return tmplfast.evaluate(simple, TEXT_ENV, context)
        return _compile_expression(source)(context)
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"undefined in `{source}`: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise TemplateError(f"in `{source}`: {exc}") from None
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise TemplateError(f"in `{source}`: {exc}") from None


def evaluate_all(sources: Iterable[str], context: Mapping[str, Any]) -> bool:
    # A loop rather than all(<generator>): gates run this for every step.
    for source in sources:  # noqa: SIM110
        if not evaluate(source, context):
            return False
    return True


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every string inside a YAML value (lists and mappings too)."""
    if isinstance(value, str):
        return render_text(value, context)
    if isinstance(value, list):
        return [render_value(v, context) for v in value]
    if isinstance(value, dict):
        return {k: render_value(v, context) for k, v in value.items()}
    return value


def render_sql(source: str, context: Mapping[str, Any], conn: Any = None) -> list[RenderedSql]:
    """Render SQL into statements with bound parameters.

    Without template values the text goes to the server as written (several
    statements in one simple query). With values, each statement is sent on its
    own, since the extended protocol takes one statement at a time.
    """
    if not is_template(source):
        return [RenderedSql(source, None, source)]
    program = _program(source)
    if program is not None:
        return _run_program(program, context, conn)
    return render_sql_with_jinja(source, context, conn)


def render_sql_with_jinja(
    source: str, context: Mapping[str, Any], conn: Any = None
) -> list[RenderedSql]:
    """The general path: Jinja renders, `_bind` turns each output into a placeholder."""
    collector = _Collector()
    try:
        shaped = _compile(Kind.SQL, source).render({**context, PARAMS_KEY: collector})
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"undefined: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise TemplateError(str(exc)) from None
    texts = [f.composable.as_string(conn) for f in collector.fragments]
    if not collector.params:
        text = _MARK.sub(lambda m: texts[int(m.group(2))], shaped)
        return [RenderedSql(text, None, text)]
    return [_bind_statement(stmt, collector.params, texts) for stmt in _statements(shaped)]


# A compiled fast-path SQL template. Per statement, its pieces in order: static
# text (as sent, with % doubled, and as shown) or the index of an output in the
# template's parts. A statement whose outputs are all bound values is also kept
# ready-made: its text with %s and with $n, and which outputs fill the values.
_Piece = tuple[str, str] | int
_Pieces = tuple[_Piece, ...]
_Ready = tuple[str, str, tuple[int, ...]]


class _Program(NamedTuple):
    outputs: tuple[tuple[int, tmplfast.Output], ...]  # with their index in parts
    shaped: str  # the unsplit text, for a template with nothing to bind
    statements: tuple[_Pieces, ...] | None  # None: split `shaped` when needed
    ready: tuple[_Ready, ...] | None  # when no output is spliced (no ident/literal)


def _pieces(shaped: str) -> _Pieces:
    pieces: list[_Piece] = []
    last = 0
    for match in _MARK.finditer(shaped):
        static = shaped[last : match.start()]
        if static:
            pieces.append((static.replace("%", "%%"), static))
        pieces.append(int(match.group(2)))
        last = match.end()
    tail = shaped[last:]
    if tail:
        pieces.append((tail.replace("%", "%%"), tail))
    return tuple(pieces)


def _ready(pieces: _Pieces) -> _Ready:
    # Each output stands for itself: the bound "values" come out as their order.
    query, display, order = _assemble(pieces, _OWN_INDEX, None)
    return "".join(query), "".join(display), tuple(order)


class _OwnIndex(dict[int, int]):
    def __missing__(self, key: int) -> int:
        return key


_OWN_INDEX = _OwnIndex()


def _program(source: str) -> _Program | None:
    """Split and shape-check a fast-path template once; None if Jinja must render it."""
    return _PROGRAMS[source]  # a shape error raises, and is not kept


def dump_programs(sources: Iterable[str]) -> dict[str, Any]:
    """The fast-path SQL templates among `sources`, compiled, as JSON-safe data.

    Compiling costs about 0.2 million instructions a template, more than the
    rest of a step; a run of a playbook that passed its checks before starts
    with its templates compiled (runbook.checks.remembered)."""
    out: dict[str, Any] = {}
    for source in sources:
        if not is_template(source):
            continue
        try:
            program = _program(source)
        except TemplateError:
            continue
        if program is None:
            continue
        out[source] = {
            "outputs": [
                [i, tmplfast.dump_ref(part.ref), part.filter] for i, part in program.outputs
            ],
            "shaped": program.shaped,
            # Derived again from `shaped` if ever needed: a template with a
            # ready-made text only needs it for SQL-text values (never from YAML).
            "statements": None
            if program.ready is not None
            else [
                [list(p) if isinstance(p, tuple) else p for p in s]
                for s in program.statements or _split(program.shaped)
            ],
            "ready": None
            if program.ready is None
            else [[query, shown, list(order)] for query, shown, order in program.ready],
        }
    return out


def prime_programs(dumped: Mapping[str, Any]) -> None:
    """Compiled templates from an earlier run (dump_programs). Raises ValueError
    (or KeyError, TypeError) on anything malformed, before priming any."""
    programs: dict[str, _Program] = {}
    for source, data in dumped.items():
        if source in _PROGRAMS:
            continue  # compiled already (a process that runs playbooks again)
        outputs = []
        for i, ref, filter_ in data["outputs"]:
            if not isinstance(i, int) or filter_ not in (None, "ident", "literal"):
                raise ValueError("not a compiled template")
            outputs.append((i, tmplfast.Output(tmplfast.load_ref(ref), filter_)))
        ready = data["ready"]
        if data["statements"] is None and ready is None:
            raise ValueError("a compiled template without its statements")
        statements = (
            None
            if data["statements"] is None
            else tuple(_load_pieces(s) for s in data["statements"])
        )
        programs[source] = _Program(
            tuple(outputs),
            str(data["shaped"]),
            statements,
            None
            if ready is None
            else tuple((str(q), str(d), tuple(int(o) for o in order)) for q, d, order in ready),
        )
    _PROGRAMS.update(programs)


def _split(shaped: str) -> tuple[_Pieces, ...]:
    return tuple(_pieces(s) for s in _statements(shaped))


def _load_pieces(data: list[Any]) -> _Pieces:
    pieces: list[_Piece] = []
    for piece in data:
        if isinstance(piece, int):
            pieces.append(piece)
        else:
            sent, shown = piece
            pieces.append((str(sent), str(shown)))
    return tuple(pieces)


def _compile_program(source: str) -> _Program | None:
    parts = tmplfast.parse_template(source, True)
    if parts is None:
        return None
    shaped = _shape(parts)
    statements = _split(shaped)
    outputs = tuple((i, part) for i, part in enumerate(parts) if not isinstance(part, str))
    plain = all(part.filter is None for _, part in outputs)
    ready = tuple(_ready(s) for s in statements) if plain and outputs else None
    return _Program(outputs, shaped, statements, ready)


# Compiled programs by source; primed from the check cache (see dump/prime).
_PROGRAMS: tmplfast.Memo[_Program | None] = tmplfast.Memo(_compile_program, 4096)


def _run_program(program: _Program, context: Mapping[str, Any], conn: Any) -> list[RenderedSql]:
    """Values bound, names spliced: what rendering with `_bind` as finalize gives."""
    values: dict[int, Any] = {}
    try:
        for i, part in program.outputs:
            value = part.ref.resolve(SQL_ENV, context)
            if part.filter == "ident":
                value = _ident(value)
            elif part.filter == "literal":
                value = _literal(value)
            values[i] = value
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"undefined: {exc.message}") from None
    if program.ready is not None:
        for value in values.values():
            if isinstance(value, Fragment):
                break  # a value that is SQL text (never from YAML): the general way
        else:
            return [
                RenderedSql(query, tuple([values[i] for i in order]), display)
                for query, display, order in program.ready
            ]
    if all(isinstance(v, Fragment) for v in values.values()):
        # No values to bind: the text goes as written, in one simple query.
        text = "".join(_assemble(_pieces(program.shaped), values, conn)[1])
        return [RenderedSql(text, None, text)]
    out = []
    statements = program.statements
    if statements is None:
        statements = _split(program.shaped)
    for pieces in statements:
        query, display, params = _assemble(pieces, values, conn)
        shown = "".join(display)
        if params:
            out.append(RenderedSql("".join(query), tuple(params), shown))
        else:
            out.append(RenderedSql(shown, None, shown))
    return out


def _assemble(
    pieces: _Pieces, values: Mapping[int, Any], conn: Any
) -> tuple[list[str], list[str], list[Any]]:
    """(text as sent, text as shown, bound values) of one run of pieces."""
    query: list[str] = []
    display: list[str] = []
    params: list[Any] = []
    for piece in pieces:
        if isinstance(piece, tuple):
            query.append(piece[0])
            display.append(piece[1])
            continue
        value = values[piece]
        if isinstance(value, Fragment):
            text = value.composable.as_string(conn)
            query.append(text.replace("%", "%%"))
            display.append(text)
        else:
            params.append(value)
            query.append("%s")
            display.append(f"${len(params)}")
    return query, display, params


def _shape(parts: tmplfast.Parts) -> str:
    """The rendered shape with every output a placeholder (values unknown)."""
    out = []
    for i, part in enumerate(parts):
        if isinstance(part, str):
            out.append(part)
        elif part.filter is None:
            out.append(f"{_PARAM}{i}{_PARAM}")
        else:
            out.append(f"{_FRAGMENT}{i}{_FRAGMENT}")
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def _statements(shaped: str) -> tuple[str, ...]:
    """Split a rendered shape and check no placeholder sits inside quotes or a body."""
    spans = sqltext.regions(shaped)
    for match in _MARK.finditer(shaped):
        if match.group(1) != _PARAM:
            continue
        region = sqltext.region_at(spans, match.start())
        if region is not None:
            where = {
                "string": "a quoted string",
                "identifier": "a quoted identifier",
                "dollar": "a dollar-quoted body",
                "comment": "a comment",
            }[region.kind]
            fix = (
                "put it outside the quotes ('%' || {{ x }} || '%')"
                if region.kind == "string"
                else "use {{ x | literal }} (or | ident for names)"
            )
            raise TemplateError(
                f"a {{{{ value }}}} inside {where} cannot be a bound parameter; {fix}"
            )
    return tuple(sqltext.split(shaped, spans))


def _bind_statement(shaped: str, params: list[Any], texts: list[str]) -> RenderedSql:
    query: list[str] = []
    display: list[str] = []
    values: list[Any] = []
    last = 0
    for match in _MARK.finditer(shaped):
        static = shaped[last : match.start()]
        query.append(static.replace("%", "%%"))
        display.append(static)
        index = int(match.group(2))
        if match.group(1) == _PARAM:
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
