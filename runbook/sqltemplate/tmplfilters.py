"""Jinja's filters that can make a value much bigger than their input, bounded.

`'x' | center(10**9)`, `s | replace('', s)`, `range(10**5) | join(s)`,
`x | indent(10**9)`, `[] | slice(10**9)`: each works out the size of its result
first and is refused past runbook.sqltemplate.tmplbudget's limits; what it makes counts
against the render's budget. They take the context (pass_context), which also
keeps Jinja from running them while it compiles a template.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jinja2
import jinja2.filters

from runbook.sqltemplate.tmplbudget import (
    WIDTH_LIMIT,
    BudgetExceeded,
    Weigh,
    budget_of,
    percent_format,
    refuse_size,
    replaced_size,
)

Filter = Callable[..., Any]


def _width(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return len(str(value))
    if value > WIDTH_LIMIT:
        raise BudgetExceeded(f"{what} over {WIDTH_LIMIT:,}")
    return max(value, 0)


def _bounded(name: str, size: Callable[..., int]) -> Filter:
    """Jinja's filter `name`, refused when `size(*args, **kwargs)` is too big."""
    original = jinja2.filters.FILTERS[name]
    passes = jinja2.utils._PassArg.from_obj(original)

    @jinja2.pass_context
    def bounded(context: Any, *args: Any, **kwargs: Any) -> Any:
        budget = budget_of(context)
        if args and isinstance(args[0], Iterator):
            args = (list(args[0]), *args[1:])  # a generator is read once: keep its items
        refuse_size(size(budget.weigh, *args, **kwargs), f"`| {name}`")
        if passes is jinja2.utils._PassArg.context:
            result = original(context, *args, **kwargs)
        elif passes is jinja2.utils._PassArg.eval_context:
            result = original(context.eval_ctx, *args, **kwargs)
        elif passes is jinja2.utils._PassArg.environment:
            result = original(context.environment, *args, **kwargs)
        else:
            result = original(*args, **kwargs)
        budget.text(budget.weigh(result))
        return result

    bounded.__name__ = f"bounded_{name}"
    return bounded


def _center(weigh: Weigh, value: Any, width: Any = 80) -> int:
    return max(len(str(value)), _width(width, "a `center` width"))


def _indent(weigh: Weigh, text: Any, width: Any = 4, *_: Any, **__: Any) -> int:
    lines = str(text)
    return len(lines) + (lines.count("\n") + 1) * _width(width, "an indent")


def _join(weigh: Weigh, value: Any, d: Any = "", attribute: Any = None) -> int:
    items = value if isinstance(value, list | tuple) else list(value)
    return weigh(items) + len(str(d)) * len(items)


def _replace(weigh: Weigh, text: Any, old: Any, new: Any, count: Any = None) -> int:
    return replaced_size(text, old, new, -1 if count is None else count)


def _format(weigh: Weigh, value: Any, *args: Any, **kwargs: Any) -> int:
    # Checked by formatting with the bounded %-operator; the result's size follows.
    return len(percent_format(str(value), kwargs or args, weigh))


def _slice(weigh: Weigh, value: Any, slices: Any, fill_with: Any = None) -> int:
    return _width(slices, "a `slice` count") + weigh(value)


def _batch(weigh: Weigh, value: Any, linecount: Any, fill_with: Any = None) -> int:
    return _width(linecount, "a `batch` size") + weigh(value)


def _sum(weigh: Weigh, iterable: Any, attribute: Any = None, start: Any = 0) -> int:
    if isinstance(start, bool) or not isinstance(start, int | float):
        raise BudgetExceeded("`| sum` adds numbers: its start must be a number")
    return 0


def _tojson(weigh: Weigh, value: Any, indent: Any = None) -> int:
    step = 0 if indent is None else _width(indent, "a `tojson` indent")
    return weigh(value) * (2 + step)


def _wordwrap(
    weigh: Weigh,
    text: Any,
    width: Any = 79,
    break_long_words: Any = True,
    wrapstring: Any = None,
    break_on_hyphens: Any = True,
) -> int:
    words = str(text)
    lines = len(words) // max(1, width if isinstance(width, int) else 1) + words.count("\n") + 1
    return len(words) + lines * len(str(wrapstring or "\n"))


SIZES: Mapping[str, Callable[..., int]] = {
    "center": _center,
    "indent": _indent,
    "join": _join,
    "replace": _replace,
    "format": _format,
    "slice": _slice,
    "batch": _batch,
    "sum": _sum,
    "tojson": _tojson,
    "wordwrap": _wordwrap,
}


def bound(filters: dict[str, Filter]) -> None:
    """Replace the filters that can amplify with their bounded versions."""
    for name, size in SIZES.items():
        filters[name] = _bounded(name, size)
