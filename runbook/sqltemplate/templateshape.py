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
zero, one and two times (two shows what touches between iterations; a loop
body must leave the lexer where it found it, so more iterations show nothing
new), and where a body tests `loop.first` or `loop.last`, the runs of up to
four iterations that put each kind of iteration next to each other. A value
never lands inside quotes, a body or a comment; a fragment always stands as a
whole token in code (runbook.sqltemplate.sqlsplice). A template with more shapes than
SHAPE_LIMIT is refused rather than half-checked.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import jinja2.nodes as nodes

from runbook.sqltemplate import sqltext, sqlvalues

SQL_FILTERS = frozenset({"ident", "literal"})
SHAPE_LIMIT = 512

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
        shapes = _shapes(tree.body, _Numbering(lines), None)
    except _OpenLoop as exc:
        return [
            (
                exc.line,
                "a `{% for %}` body must be complete SQL on its own: it may not leave quotes, "
                "a comment or a dollar-quoted body open, nor begin or end with one of "
                "$ ' \" - / * \\ & (repeated, they could join into one)",
            )
        ]
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
    """(line, message) of what the allow-list refuses."""
    for node in body:
        line = node.lineno or 1
        if isinstance(node, nodes.Output):
            for child in node.nodes:
                if isinstance(child, nodes.TemplateData):
                    if sqlvalues.MARKERS & set(child.data):
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
        if (
            node.name == "map"
            and not node.kwargs
            and (
                node.dyn_args
                or node.dyn_kwargs
                or not node.args
                or not isinstance(node.args[0], nodes.Const)
            )
        ):
            # map(f), map(*names): a value would choose the filter, `literal` too.
            yield (
                node.lineno or 1,
                "`| map` applies a filter named in the template (map('upper')), or "
                "map(attribute='…'): not one a value names",
            )
            continue
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


class _OpenLoop(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


# Characters at a loop body's edges that could join with the next iteration's
# into a quote, a comment or a dollar tag (`$` + `a$`, `-` + `-`, `/` + `*`).
_EDGES = frozenset("$'\"-/*\\&")


def _self_contained(body: str) -> bool:
    """A loop body that leaves the lexer where it found it, whatever repeats:
    everything it opens it closes, and its edges cannot join the next iteration's.
    Then two iterations show every neighbour the loop can make, and what comes
    after the loop is in code whatever the number of iterations."""
    if not body:
        return True
    if body[0] in _EDGES or body[-1] in _EDGES:
        return False
    probe = body + "\x03"
    return sqltext.region_at(sqltext.regions(probe), len(probe) - 1) is None


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


# Where an iteration stands in its loop: (loop.first, loop.last), or None when
# nothing in the body asks.
Position = tuple[bool, bool] | None
# The iterations worth trying when a body asks: one alone, then runs of 2, 3 and
# 4, which between them put every kind of iteration next to every other.
_RUNS: tuple[tuple[tuple[bool, bool], ...], ...] = (
    ((True, True),),
    ((True, False), (False, True)),
    ((True, False), (False, False), (False, True)),
    ((True, False), (False, False), (False, False), (False, True)),
)


def _shapes(body: Sequence[nodes.Node], numbering: _Numbering, position: Position) -> list[str]:
    shapes = [""]
    for node in body:
        options = _node_shapes(node, numbering, position)
        shapes = _joined(shapes, options)
    return shapes


def _joined(heads: list[str], tails: list[str]) -> list[str]:
    if len(heads) * len(tails) > SHAPE_LIMIT:
        raise _TooMany  # before making them: the product is what grows
    return list(dict.fromkeys(a + b for a in heads for b in tails))


def _node_shapes(node: nodes.Node, numbering: _Numbering, position: Position) -> list[str]:
    if isinstance(node, nodes.Output):
        return [
            "".join(
                child.data if isinstance(child, nodes.TemplateData) else numbering.marker(child)
                for child in node.nodes
            )
        ]
    if isinstance(node, nodes.If):
        return _if_shapes(node, numbering, position)
    if isinstance(node, nodes.For):
        return _loop_shapes(node, numbering)
    return [""]  # refused by _disallowed before shapes are made


def _if_shapes(node: nodes.If, numbering: _Numbering, position: Position) -> list[str]:
    """Each branch that can be taken; `loop.first`/`loop.last` tests are decided
    by the iteration's position (`{% if not loop.last %}, {% endif %}`)."""
    options: list[str] = []
    for test, body in [(node.test, node.body), *((b.test, b.body) for b in node.elif_)]:
        decided = _decide(test, position)
        if decided is False:
            continue
        options += _shapes(body, numbering, position)
        if len(options) > SHAPE_LIMIT:
            raise _TooMany
        if decided is True:
            return list(dict.fromkeys(options))
    options += _shapes(node.else_, numbering, position)  # [""] without an else
    return list(dict.fromkeys(options))


def _decide(test: nodes.Node, position: Position) -> bool | None:
    if position is None:
        return None
    if isinstance(test, nodes.Not):
        inner = _decide(test.node, position)
        return None if inner is None else not inner
    if (
        isinstance(test, nodes.Getattr)
        and isinstance(test.node, nodes.Name)
        and test.node.name == "loop"
        and test.attr in ("first", "last")
    ):
        return position[0] if test.attr == "first" else position[1]
    return None


def _asks_position(body: Sequence[nodes.Node]) -> bool:
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, nodes.If):
            tests = [node.test, *(b.test for b in node.elif_)]
            if any(_decide(t, (True, True)) is not None for t in tests):
                return True
        if not isinstance(node, nodes.For):  # a nested loop's `loop` is its own
            stack.extend(node.iter_child_nodes())
    return False


def _loop_shapes(node: nodes.For, numbering: _Numbering) -> list[str]:
    """No iteration, and runs of iterations that show every neighbour the loop can
    make; each body must be self-contained, so that longer runs show nothing new."""
    if _asks_position(node.body):
        bodies = {p: _shapes(node.body, numbering, p) for run in _RUNS for p in run}
        runs = _RUNS
    else:
        bodies = {(True, True): _shapes(node.body, numbering, None)}
        runs = (((True, True),), ((True, True), (True, True)))
    for options in bodies.values():
        for body in options:
            if not _self_contained(body):
                raise _OpenLoop(node.lineno or 1)
    shapes = _shapes(node.else_, numbering, None)
    for run in runs:
        made = [""]
        for position in run:
            made = _joined(made, bodies[position])
        shapes = list(dict.fromkeys(shapes + made))
    if len(shapes) > SHAPE_LIMIT:
        raise _TooMany
    return shapes
