"""Bounded rendering: no template can run unbounded work or fill the memory.

Jinja's sandbox keeps templates away from Python's internals, but not from
`{% for i in range(99999) %}{% for j in range(99999) %}`, `'x' * 10**15`,
`10**10**10` or `'%999999999d' % 1`. Every render here carries a Budget (in its
context, under BUDGET): loop iterations and calls count as steps, and the text
a loop body or a macro writes, every printed value and every value an operator,
a filter or a method makes counts as characters. Before an operation that can
make something big (repeating, powers, padding, joining, replacing, string
formatting) the size of its result is worked out and refused past VALUE_LIMIT.

The environment (BoundedEnvironment) also refuses, when a template is compiled,
every shape the static rules refuse (runbook.sqltemplate.templateshape): what validation
refuses can never be rendered by another path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, cast

import jinja2
import jinja2.nodes as nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from runbook.errors import TemplateError

BUDGET = "__runbook_budget__"
CONCAT = "__runbook_concat__"
ITER = "__runbook_iter__"
CHARGE = "__runbook_charge__"
KEEP = "__runbook_keep__"

STEP_LIMIT = 1_000_000  # loop iterations and calls, per render
TEXT_LIMIT = 10_000_000  # characters written or made, per render
VALUE_LIMIT = 10_000_000  # characters (or items) in any one value
BITS_LIMIT = 100_000  # bits in any one integer
WIDTH_LIMIT = 10_000  # a padding width, an indent, a %-format width


class BudgetExceeded(TemplateError):
    """A render asked for more work or memory than a template may use."""


class Budget:
    """What one render has used so far, and the sizes of the values it measured."""

    __slots__ = ("chars", "sizes", "steps")

    def __init__(self) -> None:
        self.steps = 0
        self.chars = 0
        self.sizes: Sizes = {}

    def step(self, count: int = 1) -> None:
        self.steps += count
        if self.steps > STEP_LIMIT:
            raise BudgetExceeded(
                f"the template runs more than {STEP_LIMIT:,} loop iterations and calls; "
                "loop over less (a query can aggregate), or split the work into steps"
            )

    def text(self, count: int) -> None:
        self.chars += count
        if self.chars > TEXT_LIMIT:
            raise BudgetExceeded(
                f"the template makes more than {TEXT_LIMIT:,} characters of text and values"
            )

    def weigh(self, value: Any) -> int:
        """weight(value), each container measured once per render; the measuring
        counts against the budget like the text it stands for."""
        size, work = measure(value, self.sizes)
        if work:
            self.text(work)
        return size


def budget_of(context: Any) -> Budget:
    found = context.get(BUDGET) if context is not None else None
    if not isinstance(found, Budget):
        raise TemplateError("a template was rendered without its work budget")
    return found


# Sizes of the containers measured so far, by id (each kept, so no id is reused).
Sizes = dict[int, tuple[Any, int]]
Weigh = Callable[[Any], int]
_CONTAINERS = (Mapping, list, tuple, set, frozenset)
_FULL = VALUE_LIMIT + 1  # "too big": sizes saturate here


def _leaf(item: Any) -> int | None:
    """The size of a value that holds no others, or None for a container."""
    if isinstance(item, str | bytes | bytearray | range):
        return len(item)
    if isinstance(item, bool) or not isinstance(item, int):
        return None if isinstance(item, _CONTAINERS) else 1
    return item.bit_length() // 8 + 1


def _children(item: Any) -> list[Any]:
    if isinstance(item, Mapping):
        return [part for pair in item.items() for part in pair]
    return list(item)


def weight(value: Any) -> int:
    """Size of a value in characters and items, counting shared parts each time
    they appear (as printing or joining them would); at most VALUE_LIMIT + 1."""
    return measure(value, {})[0]


def measure(value: Any, sizes: Sizes) -> tuple[int, int]:
    """(weight, work): each container not in `sizes` is measured once, from its
    children up, without recursion; work counts the children read. A container
    that holds itself is too big."""
    leaf = _leaf(value)
    if leaf is not None:
        return leaf, 0
    work = 0
    opened: set[int] = set()
    stack = [value]
    while stack:
        item = stack[-1]
        key = id(item)
        if key in sizes:
            stack.pop()
            continue
        if key not in opened:
            opened.add(key)
            for child in _children(item):
                work += 1
                if _leaf(child) is None and id(child) not in sizes:
                    if id(child) in opened:
                        sizes[id(child)] = (child, _FULL)  # a cycle
                    else:
                        stack.append(child)
            continue
        stack.pop()
        total = 1
        for child in _children(item):
            leaf = _leaf(child)
            total += leaf if leaf is not None else sizes[id(child)][1]
            if total >= _FULL:
                total = _FULL
                break
        sizes[key] = (item, total)
    return sizes[id(value)][1], work


def refuse_size(size: int, what: str) -> None:
    if size > VALUE_LIMIT:
        raise BudgetExceeded(
            f"{what} would make a value of about {size:,} characters or items "
            f"(at most {VALUE_LIMIT:,})"
        )


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BudgetExceeded(f"{what} must be a whole number")
    if abs(value) > VALUE_LIMIT:
        refuse_size(abs(value), what)
    return value


_SEQUENCE = (str, bytes, list, tuple)


def binop(operator: str, left: Any, right: Any, weigh: Weigh = weight) -> Any:
    """`left operator right`, refused before it makes something too big."""
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, _SEQUENCE) and isinstance(times, int):
                refuse_size(weigh(seq) * max(times, 0), "repeating a value")
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and left.bit_length() + right.bit_length() > BITS_LIMIT
        ):
            raise BudgetExceeded(f"a product of more than {BITS_LIMIT:,} bits")
        return left * right
    if operator == "**":
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and abs(left) > 1
            and (right > BITS_LIMIT or left.bit_length() * right > BITS_LIMIT)
        ):
            raise BudgetExceeded(f"a power of more than {BITS_LIMIT:,} bits")
        return left**right
    if operator == "+":
        if isinstance(left, _SEQUENCE) and isinstance(right, _SEQUENCE):
            refuse_size(weigh(left) + weigh(right), "adding two values")
        return left + right
    if operator == "%":
        if isinstance(left, str):
            return percent_format(left, right, weigh)
        return left % right
    raise TemplateError(f"operator {operator!r} is not bounded")  # not intercepted


# A %-conversion: flags, a width and a precision (either may be `*`).
_CONVERSION = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")


def percent_format(template: str, args: Any, weigh: Weigh = weight) -> str:
    """`template % args`, with every width and precision at most WIDTH_LIMIT."""
    values = args if isinstance(args, tuple) else (args,)
    size = len(template) + sum(weigh(v) for v in values)
    for match in _CONVERSION.finditer(template):
        for number in match.groups():
            if number == "*":
                raise BudgetExceeded("a `*` width in %-formatting; write the width out")
            if number is not None and int(number) > WIDTH_LIMIT:
                raise BudgetExceeded(f"a %-format width over {WIDTH_LIMIT:,}")
            size += int(number or 0)
    refuse_size(size, "%-formatting")
    return str(template % args)


# str methods that can make a value far bigger than their owner, each measured
# by estimate_call first (validation measures constant calls with it too).
_PADDING = frozenset({"center", "ljust", "rjust", "zfill"})
SIZED_METHODS = _PADDING | {"join", "replace"}


def estimate_call(func: Any, args: tuple[Any, ...], weigh: Weigh) -> tuple[Any, ...]:
    """Refuse a str/bytes method call that would make too big a value; the
    arguments to call it with (an iterator read to measure it, as a list)."""
    owner = getattr(func, "__self__", None)
    if not isinstance(owner, str | bytes):
        return args
    name = getattr(func, "__name__", "")
    if name in _PADDING and args:
        refuse_size(max(len(owner), _count(args[0], f"{name}()'s width")), f"{name}()")
    elif name == "join" and args:
        items = args[0] if isinstance(args[0], list | tuple) else list(args[0])
        refuse_size(weigh(items) + len(owner) * len(items), "join()")
        return (items, *args[1:])
    elif name == "replace" and len(args) >= 2:
        refuse_size(replaced_size(owner, args[0], args[1], *args[2:3]), "replace()")
    return args


def replaced_size(text: Any, old: Any, new: Any, count: Any = -1) -> int:
    """Length of `text.replace(old, new, count)`, worked out without making it."""
    whole, before, after = str(text), str(old), str(new)
    found = len(whole) + 1 if before == "" else whole.count(before)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(whole) + found * max(0, len(after) - len(before))


def instrument(tree: nodes.Template) -> None:
    """Make every loop charge its iterations and every macro its calls, with the
    text their bodies write (their nested loops and macros charge for themselves)."""
    for loop in list(tree.find_all(nodes.For)):
        cost = nodes.Const(1 + _static_size(loop.body))
        loop.iter = nodes.Call(nodes.Name(ITER, "load"), [loop.iter, cost], [], None, None)
        loop.iter.set_lineno(loop.lineno)
    blocks: list[nodes.Macro | nodes.CallBlock] = [
        *tree.find_all(nodes.Macro),
        *tree.find_all(nodes.CallBlock),
    ]
    for block in blocks:
        cost = nodes.Const(1 + _static_size(block.body))
        charge = nodes.Call(nodes.Name(CHARGE, "load"), [cost], [], None, None)
        statement = nodes.ExprStmt(charge)
        statement.set_lineno(block.lineno)
        block.body.insert(0, statement)
    # A value kept under a name is measured (as every call's arguments are): each
    # `{% set b = [a, a] %}` could double what printing it would make.
    for assign in list(tree.find_all(nodes.Assign)):
        assign.node = _kept(assign.node)
    for scope in list(tree.find_all(nodes.With)):
        scope.values = [_kept(value) for value in scope.values]
    _BoundedConcat().visit(tree)


class _BoundedConcat(NodeTransformer):
    """`a ~ b ~ …` joined by _concat, which refuses a result past VALUE_LIMIT
    before making it: Jinja's own join is not an operator the sandbox
    intercepts, and 200 copies of a 9 MB query result made 1.8 GB."""

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        call = nodes.Call(nodes.Name(CONCAT, "load"), list(node.nodes), [], None, None)
        call.set_lineno(node.lineno or 1)
        return call


def joined(parts: Iterable[Any]) -> str:
    """`a ~ b ~ …`: measured before it is made (the run's and validation's)."""
    texts = [part if isinstance(part, str) else str(part) for part in parts]
    refuse_size(sum(map(len, texts)), "a text joined with ~")
    return "".join(texts)


@jinja2.pass_context
def _concat(context: Any, *parts: Any) -> str:
    text = joined(parts)
    budget_of(context).text(len(text))
    return text


def _kept(value: nodes.Node) -> nodes.Expr:
    call = nodes.Call(nodes.Name(KEEP, "load"), [cast(nodes.Expr, value)], [], None, None)
    call.set_lineno(value.lineno or 1)
    return call


def _keep(value: Any) -> Any:
    return value  # measured on the way in, by BoundedEnvironment.call


def _static_size(body: Iterable[nodes.Node]) -> int:
    size = 0
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, nodes.TemplateData):
            size += len(node.data)
        elif not isinstance(node, nodes.For | nodes.Macro | nodes.CallBlock):
            stack.extend(node.iter_child_nodes())
    return size


@jinja2.pass_context
def _iterate(context: Any, iterable: Any, cost: int) -> Iterator[Any]:
    budget = budget_of(context)

    def charged() -> Iterator[Any]:
        for item in iterable:
            budget.step()
            budget.text(cost)
            yield item

    return charged()


@jinja2.pass_context
def _charge(context: Any, cost: int) -> str:
    budget_of(context).text(cost)
    return ""


@jinja2.pass_context
def charge_output(context: Any, value: Any) -> Any:
    """A finalize hook for text: what a template prints counts."""
    budget = budget_of(context)
    budget.text(len(value) if isinstance(value, str) else budget.weigh(value))
    return value


Check = Callable[[nodes.Template], None]


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with bounded operators, calls, loops and filters."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, check: Check, safe_name: Callable[[str], bool], **options: Any) -> None:
        """`check` refuses a tree before it is compiled; `safe_name` tells the
        attribute names a template may read (runbook.sqltemplate.templatesafe)."""
        super().__init__(**options)
        self.check = check
        self.safe_name = safe_name
        # Constant folding would run filters while compiling, outside any budget.
        self.optimized = False
        for name in ("cycler", "joiner", "lipsum", "namespace"):
            # Text generators and mutable state; not for runbooks.
            self.globals.pop(name, None)
        self.globals[ITER] = _iterate
        self.globals[CONCAT] = _concat
        self.globals[CHARGE] = _charge
        self.globals[KEEP] = _keep

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return self.safe_name(attr) and super().is_safe_attribute(obj, attr, value)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = budget_of(context)
        result = binop(operator, left, right, budget.weigh)
        budget.text(budget.weigh(result))
        return result

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = budget_of(__context)
        budget.step()
        for value in (*args, *kwargs.values()):
            refuse_size(budget.weigh(value), "a value passed on")
        args = estimate_call(__obj, args, budget.weigh)
        result = super().call(__context, __obj, *args, **kwargs)
        budget.text(budget.weigh(result))
        return result

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        self.check(source)
        instrument(source)
        return super()._generate(source, name, filename, defer_init)
