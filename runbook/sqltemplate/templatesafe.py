"""What the Jinja sandbox would refuse while rendering, refused before anything runs.

The sandbox refuses `''.__class__.__mro__`, `x.append(1)` or `'{}'.format(…)`
only when a render reaches them, so a playbook would run (and write) up to the
step that holds one. These rules read the parsed template instead and apply
the sandbox's own: any attribute named with a leading underscore, the internal
attributes jinja2.sandbox lists (`mro`, `gi_frame`, …), the methods that modify
lists, dicts and sets, and str's formatting and translation methods (whose
output has no bound). Item access with a constant key is checked the same way
when the key could only name an attribute (`x['__class__']`); a key that comes
from a value (`row[col]`) is data, checked by the sandbox when it is used.

Every template also refuses what runbook has no use for and could not bound:
`{% extends %}`, `{% include %}`, `{% import %}`, `{% block %}`, recursive loops,
and constant operations too big to make (`'x' * 10**15`, `range(10**9)`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jinja2.nodes as nodes
import jinja2.sandbox as sandbox

from runbook.sqltemplate import tmplbudget, tmplfilters

_INTERNAL = (
    sandbox.UNSAFE_FUNCTION_ATTRIBUTES
    | sandbox.UNSAFE_METHOD_ATTRIBUTES
    | sandbox.UNSAFE_GENERATOR_ATTRIBUTES
    | sandbox.UNSAFE_COROUTINE_ATTRIBUTES
    | sandbox.UNSAFE_ASYNC_GENERATOR_ATTRIBUTES
    | {"mro", "func_globals", "func_code", "im_func", "im_self", "f_globals", "f_locals"}
)
_MUTATING = frozenset(name for _, names in sandbox._mutable_spec for name in names)
# str.format/format_map reach attributes through a format string; translate,
# maketrans and expandtabs can make output of any size.
_UNBOUNDED = frozenset({"format", "format_map", "translate", "maketrans", "expandtabs"})
UNSAFE_NAMES = _INTERNAL | _MUTATING | _UNBOUNDED

# Filters that read an attribute named by an argument: (position, keyword).
_ATTRIBUTE_ARGUMENTS = {
    "attr": (0, None),
    "selectattr": (0, None),
    "rejectattr": (0, None),
    "groupby": (0, "attribute"),
    "map": (None, "attribute"),
    "sort": (2, "attribute"),
    "unique": (1, "attribute"),
    "min": (1, "attribute"),
    "max": (1, "attribute"),
    "sum": (0, "attribute"),
    "join": (1, "attribute"),
}

_NOT_FOR_RUNBOOKS = {
    nodes.Extends: "`{% extends %}`",
    nodes.Include: "`{% include %}`",
    nodes.Import: "`{% import %}`",
    nodes.FromImport: "`{% from … import %}`",
    nodes.Block: "`{% block %}`",
}

Fault = tuple[int, str]


def safe_name(name: str) -> bool:
    """Whether the sandbox lets a template read attribute `name` (as far as the
    name alone tells)."""
    return not name.startswith("_") and name not in UNSAFE_NAMES


def safe_key(key: str) -> bool:
    """Whether a constant item key is data: a dict key may be anything
    (`row['_id']`); these could only mean an attribute."""
    return not key.startswith("__") and key not in _INTERNAL


DEPTH_LIMIT = 100  # levels of the template's tree; Jinja walks it recursively


def too_deep(tree: nodes.Node) -> int | None:
    """The line where the tree nests deeper than DEPTH_LIMIT, or None. Iterative:
    every other walk (these rules, Jinja's compiler) recurses, and would fail."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > DEPTH_LIMIT:
            return node.lineno or 1
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
    return None


def faults(tree: nodes.Template) -> Iterator[Fault]:
    """(line, message) of each thing the sandbox would refuse, in source order,
    then loops over constants that would run past the render's step budget."""
    for node in tree.find_all(nodes.Node):
        line = node.lineno or 1
        message = _fault(node)
        if message:
            yield line, message
    yield from _loop_faults(tree, 1)


def _loop_faults(node: nodes.Node, enclosing: int) -> Iterator[Fault]:
    """`{% for i in range(99999) %}{% for j in range(99999) %}`: the iterations of
    nested loops over constants multiply; past the budget, refuse them now."""
    for child in node.iter_child_nodes():
        runs = enclosing
        if isinstance(child, nodes.For):
            try:
                runs = enclosing * len(constant(child.iter))
            except Exception:  # not a constant: the budget bounds it when it runs
                runs = enclosing
            if runs > tmplbudget.STEP_LIMIT:
                yield (
                    child.lineno or 1,
                    f"these loops would run {runs:,} times (at most {tmplbudget.STEP_LIMIT:,} "
                    "loop iterations and calls in one template)",
                )
                continue
        yield from _loop_faults(child, runs)


def _fault(node: nodes.Node) -> str | None:
    for kind, tag in _NOT_FOR_RUNBOOKS.items():
        if isinstance(node, kind):
            return f"{tag} is not available in runbook templates (there is no template folder)"
    if isinstance(node, nodes.For) and node.recursive:
        return "recursive loops are not available in runbook templates"
    if isinstance(node, nodes.Getattr) and not safe_name(node.attr):
        return _refused(node.attr)
    if isinstance(node, nodes.Getitem):
        return _name_fault(node.arg, safe_key)
    if isinstance(node, nodes.Filter):
        return _filter_fault(node) or _constant_fault(node)
    if isinstance(node, nodes.BinExpr | nodes.Call | nodes.Concat):
        return _constant_fault(node)
    return None


def _name_fault(node: nodes.Node, safe: Callable[[str], bool]) -> str | None:
    """Why a key or attribute name given by an expression is refused, or None.

    A name read from a value (`row[col]`) is the sandbox's to check when the run
    reaches it. A name made from constants (`x['__cla' ~ 'ss__']`) is worked out
    here and checked, and one these rules cannot work out is refused."""
    if any(name.ctx == "load" for name in _names(node)):
        return None
    if not any(isinstance(c.value, str) for c in _consts(node)):
        return None  # a number or a slice names no attribute
    try:
        value = constant(node)
    except Exception:  # not a constant these rules can work out
        return "a key made from constants in a way runbook cannot check; write it out"
    if isinstance(value, str):
        for part in value.split("."):
            if not safe(part):
                return _refused(part)
    return None


def _names(node: nodes.Node) -> list[nodes.Name]:
    return [node] if isinstance(node, nodes.Name) else list(node.find_all(nodes.Name))


def _consts(node: nodes.Node) -> list[nodes.Const]:
    return [node] if isinstance(node, nodes.Const) else list(node.find_all(nodes.Const))


def _refused(name: str) -> str:
    if name in _MUTATING:
        why = "it would modify a value (templates read values, they never change them)"
    elif name in _UNBOUNDED:
        why = "its output has no bound (use the `format` filter or `~` for text)"
    else:
        why = "it is internal to Python, not data"
    return f"the template reads {name!r}, which the sandbox refuses: {why}"


def _filter_fault(node: nodes.Filter) -> str | None:
    spec = _ATTRIBUTE_ARGUMENTS.get(node.name or "")
    if spec is None:
        return None
    position, keyword = spec
    names: list[nodes.Expr] = []
    # `| attr` reads an attribute (as `.name` does); the others read an item first.
    is_attr = node.name == "attr"
    if node.name == "map" and node.args:
        first = node.args[0]
        if isinstance(first, nodes.Const) and first.value == "attr" and len(node.args) > 1:
            names.append(node.args[1])  # map('attr', name)
            is_attr = True
    elif position is not None and len(node.args) > position:
        names.append(node.args[position])
    names.extend(kw.value for kw in node.kwargs if kw.key == keyword)
    for name in names:
        if is_attr and _names(name):
            return "`| attr` takes a constant name (a name from a value could be anything)"
        problem = _name_fault(name, safe_name if is_attr else safe_key)
        if problem:
            return problem
    return None


def _constant_fault(node: nodes.Expr) -> str | None:
    """Refuse an operation on constants that is too big to make (`'x' * 10**15`)."""
    try:
        constant(node)
    except tmplbudget.BudgetExceeded as exc:
        return str(exc)
    except Exception:  # not a constant, or one that fails: the run reports it
        return None
    return None


class _Unknown(Exception):
    """Not a constant (or not one these rules evaluate)."""


_OPERATORS: dict[type[nodes.Node], str] = {
    nodes.Mul: "*",
    nodes.Pow: "**",
    nodes.Add: "+",
    nodes.Mod: "%",
}


def constant(node: nodes.Node) -> Any:
    """The value of a constant expression, made with the bounded operators."""
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.Neg):
        return -_number(constant(node.node))
    if isinstance(node, nodes.Concat):
        return tmplbudget.joined(constant(part) for part in node.nodes)
    if isinstance(node, nodes.List | nodes.Tuple):
        items = [constant(item) for item in node.items]
        return items if isinstance(node, nodes.List) else tuple(items)
    operator = _OPERATORS.get(type(node)) if isinstance(node, nodes.BinExpr) else None
    if operator is not None and isinstance(node, nodes.BinExpr):
        return tmplbudget.binop(operator, constant(node.left), constant(node.right))
    if isinstance(node, nodes.Sub) and isinstance(node, nodes.BinExpr):
        return _number(constant(node.left)) - _number(constant(node.right))
    if (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.Name)
        and node.node.name == "range"
        and not node.kwargs
        and node.dyn_args is None
    ):
        bounds = [_whole(constant(arg)) for arg in node.args]
        try:
            return sandbox.safe_range(*bounds)
        except OverflowError as exc:
            raise tmplbudget.BudgetExceeded(str(exc)) from None
        except (TypeError, ValueError):
            raise _Unknown from None
    if (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.Getattr)
        and node.node.attr in tmplbudget.SIZED_METHODS
        and not node.kwargs
        and node.dyn_args is None
        and node.dyn_kwargs is None
    ):
        # `'x'.ljust(10**9)`: measured as the run measures it (estimate_call).
        owner = constant(node.node.node)
        if not isinstance(owner, str):
            raise _Unknown
        given = tuple(constant(arg) for arg in node.args)
        tmplbudget.estimate_call(getattr(owner, node.node.attr), given, tmplbudget.weight)
        raise _Unknown
    if isinstance(node, nodes.Filter) and node.node is not None and node.name in tmplfilters.SIZES:
        # `'x' | center(10**9)`: the size of what the filter would make, not the value.
        args = [constant(arg) for arg in node.args]
        kwargs = {str(kw.key): constant(kw.value) for kw in node.kwargs}
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise _Unknown
        tmplbudget.refuse_size(
            tmplfilters.SIZES[node.name](tmplbudget.weight, constant(node.node), *args, **kwargs),
            f"`| {node.name}`",
        )
    raise _Unknown


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Unknown
    return value


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Unknown
    return value
