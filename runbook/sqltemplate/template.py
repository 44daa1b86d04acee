"""Sandboxed Jinja2 for SQL, text and expressions.

SQL templates never paste values: `{{ expr }}` renders to a placeholder and its
value becomes a bound parameter. Identifiers go through `| ident` (quoted by
psycopg's `sql.Identifier`) and constants where PostgreSQL takes no parameters
through `| literal` (quoted by psycopg with the connection's settings). There is
no raw pass-through filter, and no other way to write SQL text: the shapes a SQL
template may take are an allow-list (runbook.sqltemplate.templateshape), checked when a
template is validated and again whenever one is compiled to render. Undefined
names raise (StrictUndefined).

Every template (SQL, text, expression) is held to the sandbox's rules before it
runs (runbook.sqltemplate.templatesafe) and renders within a bounded budget of work and
memory (runbook.sqltemplate.tmplbudget). Validation reads templates; it never renders one.
"""

from __future__ import annotations

import difflib
import enum
import functools
from collections.abc import Iterable, Mapping
from typing import Any

import jinja2
import jinja2.meta
import jinja2.nodes

from runbook.errors import TemplateError
from runbook.sqltemplate import (
    lookups,
    sqlprogram,
    sqltext,
    templatesafe,
    templateshape,
    tmplfast,
    tmplfilters,
)
from runbook.sqltemplate.sqlvalues import (
    MARK,
    PARAM,
    Fragment,
    RenderedSql,
    bind_statement,
    ident,
    literal,
    statements,
)
from runbook.sqltemplate.tmplbudget import BUDGET, BoundedEnvironment, Budget, charge_output

PARAMS_KEY = "__runbook_binds__"


class Kind(enum.Enum):
    SQL = "sql"
    TEXT = "text"
    EXPR = "expression"


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
        mark = value.marker
        return f"{mark}{len(collector.fragments) - 1}{mark}"
    if isinstance(value, jinja2.Undefined):
        str(value)  # raises UndefinedError with jinja's message
    collector.params.append(value)
    return f"{PARAM}{len(collector.params) - 1}{PARAM}"


# Errors a render can end in besides Jinja's own, reported as template errors.
_FAILURES = (TypeError, ValueError, ArithmeticError, RecursionError, MemoryError)


def _refuse(fault: tuple[int, str] | None) -> None:
    if fault is not None:
        raise TemplateError(fault[1])


def _check_any(tree: jinja2.nodes.Template) -> None:
    """What every template must be before it is compiled (and so rendered)."""
    if templatesafe.too_deep(tree) is not None:
        raise TemplateError(_TOO_DEEP)
    _refuse(next(templatesafe.faults(tree), None))


def _check_sql(tree: jinja2.nodes.Template) -> None:
    _check_any(tree)
    _refuse(next(iter(templateshape.faults(tree)), None))


def _make_env(*, for_sql: bool, finalize: Any) -> BoundedEnvironment:
    env = BoundedEnvironment(
        _check_sql if for_sql else _check_any,
        templatesafe.safe_name,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=finalize,
    )
    tmplfilters.bound(env.filters)
    env.filters["by"] = lookups.by
    if for_sql:
        env.filters["ident"] = ident
        env.filters["literal"] = literal
    # No `safe`-style pass-through: in SQL it would paste raw text.
    env.filters.pop("safe", None)
    return env


SQL_ENV = _make_env(for_sql=True, finalize=_bind)
TEXT_ENV = _make_env(for_sql=False, finalize=charge_output)
# Shell command lines bind values as environment variables, like SQL parameters.
SHELL_ENV = _make_env(for_sql=False, finalize=_bind)
BUILTIN_NAMES = frozenset(TEXT_ENV.globals) | {"true", "false", "none", "True", "False", "None"}


def render_shell(source: str, context: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """A /bin/sh command line whose {{ values }} arrive as "$RUNBOOK_V<n>" variables."""
    collector = _Collector()
    try:
        shaped = SHELL_ENV.from_string(source).render(
            context, **{PARAMS_KEY: collector, BUDGET: Budget()}
        )
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"undefined: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise TemplateError(str(exc)) from None
    except _FAILURES as exc:
        raise TemplateError(_failure(source, exc)) from None
    env = {f"RUNBOOK_V{i}": "" if v is None else str(v) for i, v in enumerate(collector.params)}
    return MARK.sub(lambda m: f'"${{RUNBOOK_V{m.group(2)}}}"', shaped), env


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
    env = SQL_ENV if kind is Kind.SQL else TEXT_ENV
    try:
        tree = _parse(kind, source)
    except jinja2.TemplateSyntaxError as exc:
        hint = " (expressions take no {{ }})" if kind is Kind.EXPR and "{" in source else ""
        return (exc.lineno or 1), f"Jinja syntax error: {exc.message}{hint}"
    return _unknown_name(env, tree)


@functools.lru_cache(maxsize=4096)
def _parse(kind: Kind, source: str) -> jinja2.nodes.Template:
    """The template's tree, read without rendering anything (syntax must be valid)."""
    env = SQL_ENV if kind is Kind.SQL else TEXT_ENV
    try:
        tree = env.parse("{{ " + source + " }}" if kind is Kind.EXPR else source)
    except RecursionError:
        raise jinja2.TemplateSyntaxError(_TOO_DEEP, 1) from None
    line = templatesafe.too_deep(tree)
    if line is not None:
        raise jinja2.TemplateSyntaxError(_TOO_DEEP, line)
    return tree


_TOO_DEEP = f"the template nests more than {templatesafe.DEPTH_LIMIT} levels deep; split it up"


def shape_faults(kind: Kind, source: str) -> list[tuple[int, str, str]]:
    """(line inside the source, message, code) of what the template may not do,
    read without rendering it: what the sandbox would refuse (every kind), and for
    SQL every shape but the allowed ones. Syntax must be valid."""
    tree = _parse(kind, source)
    found = [(line, message, "template-sandbox") for line, message in templatesafe.faults(tree)]
    if kind is Kind.SQL:
        found += [(line, message, "sql-shape") for line, message in templateshape.faults(tree)]
    return found


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
    tree = _parse(kind, source)
    try:
        found = jinja2.meta.find_undeclared_variables(tree)
    except AssertionError:
        # Jinja's tracker fails on some shapes (a `{% set x | f(y) %}` block);
        # every name read is then taken as used.
        found = {n.name for n in tree.find_all(jinja2.nodes.Name) if n.ctx == "load"}
    return set(found) - BUILTIN_NAMES


def _simple(kind: Kind, source: str) -> tmplfast.Parts | tmplfast.Comparison | None:
    if kind is Kind.EXPR:
        return tmplfast.parse_expression(source)
    return tmplfast.parse_template(source, kind is Kind.SQL)


def shape_error(source: str) -> str | None:
    """Why a SQL template may not run whatever the values (a value inside quotes,
    a filter block…), or None. Read, never rendered."""
    if not is_template(source) or syntax_error(Kind.SQL, source) is not None:
        return None
    found = shape_faults(Kind.SQL, source)
    return found[0][1] if found else None


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
        return _compile(Kind.TEXT, source).render(context, **{BUDGET: Budget()})
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"undefined: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise TemplateError(str(exc)) from None
    except _FAILURES as exc:
        raise TemplateError(_failure(source, exc)) from None


def evaluate(source: str, context: Mapping[str, Any]) -> Any:
    try:
        simple = tmplfast.parse_expression(source)
        if simple is not None:
            return tmplfast.evaluate(simple, TEXT_ENV, context)
        return _compile_expression(source)(context, **{BUDGET: Budget()})
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"undefined in `{source}`: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise TemplateError(f"in `{source}`: {exc}") from None
    except _FAILURES as exc:
        raise TemplateError(_failure(source, exc)) from None


def _failure(source: str, exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return f"in `{source}`: calls nest too deeply"
    if isinstance(exc, MemoryError):
        return f"in `{source}`: out of memory"
    return f"in `{source}`: {exc}"


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


def render_sql(
    source: str, context: Mapping[str, Any], conn: Any = None, *, one_by_one: bool = False
) -> list[RenderedSql]:
    """Render SQL into statements with bound parameters.

    Without template values the text goes to the server as written (several
    statements in one simple query). With values, each statement is sent on its
    own, since the extended protocol takes one statement at a time. `one_by_one`
    splits the text without values too (an autocommit step runs its statements
    one at a time: PostgreSQL runs a multi-statement query as one transaction
    block, which VACUUM and the like refuse); blank statements are dropped.
    """
    if not is_template(source):
        if one_by_one:
            return [RenderedSql(s, None, s) for s in sqltext.split(source)]
        return [RenderedSql(source, None, source)]
    program = sqlprogram.program(source)
    if program is not None:
        return sqlprogram.run(program, context, conn, SQL_ENV, one_by_one=one_by_one)
    return render_sql_with_jinja(source, context, conn, one_by_one=one_by_one)


def render_sql_with_jinja(
    source: str, context: Mapping[str, Any], conn: Any = None, *, one_by_one: bool = False
) -> list[RenderedSql]:
    """The general path: Jinja renders, `_bind` turns each output into a placeholder."""
    collector = _Collector()
    try:
        shaped = _compile(Kind.SQL, source).render(
            context, **{PARAMS_KEY: collector, BUDGET: Budget()}
        )
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"undefined: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise TemplateError(str(exc)) from None
    except _FAILURES as exc:
        raise TemplateError(_failure(source, exc)) from None
    fragments = collector.fragments
    texts = [f.text(conn) for f in fragments]
    split = statements(shaped)  # every output where it may stand, before any is spliced
    if not collector.params and not one_by_one:  # the whole text, in one simple query
        return [bind_statement(shaped, [], texts, fragments)]
    return [bind_statement(stmt, collector.params, texts, fragments) for stmt in split]
