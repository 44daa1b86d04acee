"""Which SQL templates may produce SQL: an allow-list over the Jinja tree.

A SQL template may write into its statement only the author's own text and
three kinds of output: `{{ expr }}`, a bound parameter whatever it holds;
`{{ x | ident }}`, a name quoted by psycopg; `{{ x | literal }}`, a constant
quoted by psycopg. `{% if %}` and `{% for %}` may choose and repeat those. Every
other node Jinja has (filter blocks, `{% set %}` blocks, macros and
`{% call %}`, `{% with %}`…) could write text that no rule quoted, so it is
refused, whatever it holds; `| ident` and `| literal` are only ever the last
filter of an output (their SQL text is never a value).

Then the lexer proves where each output lands, on every shape the statement can
take without rendering anything: each branch of each `{% if %}`, each loop run
zero, one and two times (two shows what touches between iterations). A value
never lands inside quotes, a body or a comment; a fragment always stands as a
whole token in code (runbook.sqlsplice). A template with more shapes than
SHAPE_LIMIT is refused rather than half-checked.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import jinja2.nodes as nodes

from runbook import sqlvalues

SQL_FILTERS = frozenset({"ident", "literal"})
SHAPE_LIMIT = 512
_CONTROL = frozenset("\x00\x01\x02")  # runbook.sqlvalues' markers

ALLOWED = (
    "in SQL only {{ value }} (a bound parameter), {{ x | ident }}, {{ x | literal }}, "
    "{% if %} and {% for %} may shape a statement"
)
_REFUSED: dict[type[nodes.Node], str] = {
    nodes.FilterBlock: (
        "a `{% filter %}` block would paste its output into the statement as SQL text; "
        "filter the value instead ({{ x | upper }} is still a bound parameter)"
    ),
    nodes.AssignBlock: (
        "a `{% set %}…{% endset %}` block makes SQL text out of a block; "
        "write the SQL where it is used"
    ),
    nodes.Assign: (
        "`{% set %}` is not available in SQL templates: write the expression inside the "
        "{{ }} that uses it (or set the variable in a `set:` step)"
    ),
    nodes.Macro: (
        "macros write SQL text that no rule quotes; write the SQL out, or call a SQL function"
    ),
    nodes.CallBlock: (
        "`{% call %}` writes SQL text that no rule quotes; write the SQL out, or call a SQL function"
    ),
}

Fault = tuple[int, str]


def faults(tree: nodes.Template) -> list[Fault]:
    """(line, message) of what makes a SQL template unsafe; empty if it is safe."""
    found = list(_disallowed(tree.body))
    if found:
        return found
    lines: dict[int, int] = {}
    try:
        shapes = _shapes(tree.body, _Numbering(lines))
    except _TooMany:
        return [
            (
                tree.lineno or 1,
                f"the statement can take more than {SHAPE_LIMIT} shapes ({{% if %}} and "
                "{% for %} combined); split it into several steps so that each can be checked",
            )
        ]
    for shaped in shapes:
        for index, message in sqlvalues.marker_faults(shaped):
            return [(lines.get(index, 1), message)]
    return []


def _disallowed(body: Sequence[nodes.Node]) -> Iterator[Fault]:
    for node in body:
        line = node.lineno or 1
        if isinstance(node, nodes.Output):
            for child in node.nodes:
                if isinstance(child, nodes.TemplateData):
                    if _CONTROL & set(child.data):
                        yield line, "SQL text cannot hold the control characters \\x00-\\x02"
                else:
                    yield from _output_faults(child)
        elif isinstance(node, nodes.If):
            yield from _plain(node.test)
            yield from _disallowed(node.body)
            for branch in node.elif_:
                yield from _plain(branch.test)
                yield from _disallowed(branch.body)
            yield from _disallowed(node.else_)
        elif isinstance(node, nodes.For):
            yield from _plain(node.iter)
            if node.test is not None:
                yield from _plain(node.test)
            yield from _disallowed(node.body)
            yield from _disallowed(node.else_)
        else:
            yield line, _REFUSED.get(type(node)) or f"`{_tag(node)}` is not allowed: {ALLOWED}"


def _tag(node: nodes.Node) -> str:
    names: dict[type[nodes.Node], str] = {
        nodes.With: "{% with %}",
        nodes.Scope: "{% with %}` or `{% autoescape %}",
        nodes.ScopedEvalContextModifier: "{% autoescape %}",
        nodes.EvalContextModifier: "{% autoescape %}",
        nodes.ExprStmt: "{% do %}",
    }
    return names.get(type(node), type(node).__name__)


def _output_faults(expr: nodes.Expr) -> Iterator[Fault]:
    if isinstance(expr, nodes.Filter) and expr.name in SQL_FILTERS:
        if expr.args or expr.kwargs or expr.dyn_args or expr.dyn_kwargs:
            yield expr.lineno or 1, f"`| {expr.name}` takes no arguments"
        if expr.node is not None:
            yield from _plain(expr.node)
        return
    yield from _plain(expr)


def _plain(expr: nodes.Node) -> Iterator[Fault]:
    """An expression whose value is data: no SQL text made inside it."""
    for node in [expr, *expr.find_all(nodes.Filter)]:
        if not isinstance(node, nodes.Filter):
            continue
        named = [node.name]
        if node.args and isinstance(node.args[0], nodes.Const):
            named.append(node.args[0].value)  # map('literal') applies a filter by name
        if SQL_FILTERS & {n for n in named if isinstance(n, str)}:
            yield (
                node.lineno or 1,
                "`| ident` and `| literal` make SQL text, not a value: use one only as the "
                "last filter of a {{ }} output ({{ x | int | literal }})",
            )


class _TooMany(Exception):
    pass


class _Numbering:
    """A marker number per output, and the line each number came from."""

    def __init__(self, lines: dict[int, int]) -> None:
        self.lines = lines
        self.ids: dict[int, int] = {}

    def marker(self, node: nodes.Expr) -> str:
        number = self.ids.setdefault(id(node), len(self.ids))
        self.lines[number] = node.lineno or 1
        if isinstance(node, nodes.Filter) and node.name in SQL_FILTERS:
            mark = sqlvalues.NAME if node.name == "ident" else sqlvalues.FRAGMENT
        else:
            mark = sqlvalues.PARAM
        return f"{mark}{number}{mark}"


def _shapes(body: Sequence[nodes.Node], numbering: _Numbering) -> list[str]:
    shapes = [""]
    for node in body:
        options = _node_shapes(node, numbering)
        shapes = list(dict.fromkeys(a + b for a in shapes for b in options))
        if len(shapes) > SHAPE_LIMIT:
            raise _TooMany
    return shapes


def _node_shapes(node: nodes.Node, numbering: _Numbering) -> list[str]:
    if isinstance(node, nodes.Output):
        return [
            "".join(
                child.data if isinstance(child, nodes.TemplateData) else numbering.marker(child)
                for child in node.nodes
            )
        ]
    if isinstance(node, nodes.If):
        options = _shapes(node.body, numbering)
        for branch in node.elif_:
            options += _shapes(branch.body, numbering)
        options += _shapes(node.else_, numbering)  # [""] without an else
        return list(dict.fromkeys(options))
    if isinstance(node, nodes.For):
        once = _shapes(node.body, numbering)
        if len(once) * len(once) > SHAPE_LIMIT:
            raise _TooMany
        twice = [a + b for a in once for b in once]
        return list(dict.fromkeys(_shapes(node.else_, numbering) + once + twice))
    return [""]  # refused by _disallowed before shapes are made
