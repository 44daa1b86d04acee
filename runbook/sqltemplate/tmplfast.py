"""A fast path for the templates most playbooks are made of.

Compiling a Jinja template costs about a quarter of a millisecond, more than the
query it renders. Most templates hold nothing but `{{ name.attr }}` (in SQL,
optionally `| ident` or `| literal`), and most gates are `name.attr OP literal`.
Those are parsed here with regular expressions and evaluated with the sandboxed
environment's own `getattr`/`getitem` and StrictUndefined, so the results and the
error messages are Jinja's. Anything else goes to Jinja.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypeVar

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from runbook.sqltemplate import templatesafe

V = TypeVar("V")

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PATH = rf"{_NAME}(?:\.{_NAME}|\[[0-9]+\]|\['[^'\\]*'\]|\[\"[^\"\\]*\"\])*"
_PATH_RE = re.compile(_PATH)
_NAME_RE = re.compile(_NAME)
_STEP = re.compile(rf"\.({_NAME})|\[([0-9]+)\]|\['([^'\\]*)'\]|\[\"([^\"\\]*)\"\]")
_OUTPUT = re.compile(rf"^\s*({_PATH})\s*(?:\|\s*(ident|literal)\s*)?$")
_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_LITERAL = r"-?[0-9]+(?:\.[0-9]+)?|'[^'\\]*'|\"[^\"\\]*\"|none|None|true|True|false|False"
_COMPARE = re.compile(rf"^\s*({_PATH})\s*(?:(==|!=|<=|>=|<|>)\s*({_LITERAL})\s*)?$")
# Words Jinja reads as operators, constants or its default globals (range, dict …).
_KEYWORDS = frozenset(
    {"and", "or", "not", "in", "is", "if", "else", "true", "false", "none", "True", "False", "None"}
    | set(jinja2.Environment().globals)
)
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


# Public attributes of runbook's own result types, read without the sandbox's
# per-access checks (filled in by runbook.results).
SAFE_ATTRIBUTES: dict[type, frozenset[str]] = {}


class Ref(NamedTuple):
    """A dotted path into the context: `crit.first.n`, `rows[0]`.

    These small records are named tuples, not frozen dataclasses: a new process
    makes several per step from the check cache, and a named tuple is made in a
    third of the time."""

    root: str
    steps: tuple[tuple[str, str | int], ...]  # ("attr", name) or ("item", key)

    def resolve(self, env: SandboxedEnvironment, context: Mapping[str, Any]) -> Any:
        if self.root not in context:
            jinja2.StrictUndefined(name=self.root)._fail_with_undefined_error()
        value = context[self.root]
        for kind, key in self.steps:
            if (
                kind == "attr"
                and type(value) in SAFE_ATTRIBUTES
                and key in SAFE_ATTRIBUTES[type(value)]
            ):
                value = getattr(value, str(key))  # a known public attribute of our own result
                continue
            value = env.getattr(value, str(key)) if kind == "attr" else env.getitem(value, key)
            if isinstance(value, jinja2.Undefined):
                # Re-raise exactly as Jinja's StrictUndefined would.
                value._fail_with_undefined_error()
        return value


def _ref(text: str) -> Ref | None:
    root = _NAME_RE.match(text)
    if root is None or root.group(0) in _KEYWORDS:
        return None
    steps: list[tuple[str, str | int]] = []
    for match in _STEP.finditer(text, root.end()):
        attr, index, single, double = match.groups()
        if attr is not None:
            steps.append(("attr", attr))
        elif index is not None:
            steps.append(("item", int(index)))
        else:
            steps.append(("item", single if single is not None else double))
    if not all(_safe_step(kind, key) for kind, key in steps):
        return None  # Jinja's path refuses it, with the sandbox's reasons
    return Ref(root.group(0), tuple(steps))


def _safe_step(kind: str, key: str | int) -> bool:
    if not isinstance(key, str):
        return True
    return templatesafe.safe_name(key) if kind == "attr" else templatesafe.safe_key(key)


class Output(NamedTuple):
    ref: Ref
    filter: str | None


Parts = tuple[str | Output, ...]


@functools.lru_cache(maxsize=8192)
def parse_template(source: str, allow_filters: bool) -> Parts | None:
    """Static text and outputs, or None if the template needs Jinja."""
    if "{%" in source or "{#" in source:
        return None
    parts: list[str | Output] = []
    last = 0
    for match in _TAG.finditer(source):
        found = _OUTPUT.match(match.group(1))
        if found is None or (found.group(2) and not allow_filters):
            return None
        ref = _ref(found.group(1))
        if ref is None:
            return None
        parts.append(source[last : match.start()])
        parts.append(Output(ref, found.group(2)))
        last = match.end()
    tail = source[last:]
    if "{{" in tail or "}}" in tail:
        return None
    parts.append(tail)
    return tuple(parts)


class Comparison(NamedTuple):
    ref: Ref
    op: str | None
    literal: Any


def _literal(text: str) -> Any:
    if text in ("none", "None"):
        return None
    if text in ("true", "True"):
        return True
    if text in ("false", "False"):
        return False
    if text[0] in "'\"":
        return text[1:-1]
    return float(text) if "." in text else int(text)


class Memo(dict[str, V]):
    """What `compute` made of each source text, at most `size` of them (all are
    dropped at once past that). `compute` is a pure function of the text, so
    threads may share it. An error raised by `compute` is not kept."""

    def __init__(self, compute: Callable[[str], V], size: int) -> None:
        super().__init__()
        self.compute = compute
        self.size = size

    def __missing__(self, source: str) -> V:
        value = self.compute(source)
        if len(self) >= self.size:
            self.clear()
        self[source] = value
        return value


def parse_expression(source: str) -> Comparison | None:
    """`path`, or `path OP literal`; None if the expression needs Jinja."""
    return _EXPRESSIONS[source]


def _parse_expression(source: str) -> Comparison | None:
    match = _COMPARE.match(source)
    if match is None:
        return None
    ref = _ref(match.group(1))
    if ref is None:
        return None
    return Comparison(ref, match.group(2), _literal(match.group(3)) if match.group(3) else None)


# Parsed expressions by source (a pure function of the text).
_EXPRESSIONS: Memo[Comparison | None] = Memo(_parse_expression, 8192)


def evaluate(comparison: Comparison, env: SandboxedEnvironment, context: Mapping[str, Any]) -> Any:
    value = comparison.ref.resolve(env, context)
    if comparison.op is None:
        return value
    return _OPS[comparison.op](value, comparison.literal)


def names(parts: Parts) -> set[str]:
    return {p.ref.root for p in parts if isinstance(p, Output)}
