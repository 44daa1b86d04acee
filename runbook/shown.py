"""Text from outside shown, never obeyed: a target's name (a database's
name, found by a computed group), a reason, a step's name.

Control and format characters (ESC, CR, bidi overrides, zero-width joiners …)
are written as escapes (`\\x1b`), so a name cannot move the cursor, recolour
the terminal or hide itself; wide characters count two columns and a stack
of combining marks keeps one (runbook.live's table fits them to its columns).
"""

from __future__ import annotations

import sys
import unicodedata

ELLIPSIS = "…"


def _escape(char: str) -> str:
    return ascii(char)[1:-1]  # '\x1b' -> \x1b, '\u202e' -> \u202e


def _cell(char: str, after_mark: bool) -> tuple[str, int, bool]:
    """How `char` is shown: its text, its columns, whether it is a combining mark."""
    category = unicodedata.category(char)
    if category[0] == "C" or category in ("Zl", "Zp"):
        return _escape(char), len(_escape(char)), False
    if category == "Mn" and unicodedata.combining(char):
        if after_mark:  # a second mark on one letter: shown, not stacked
            return _escape(char), len(_escape(char)), False
        return char, 0, True
    return char, 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1, False


def fit(text: str, width: int, *, flow: bool = False) -> str:
    """`text` made safe to show and cut to `width` columns (an ellipsis marks
    the cut). `flow`: whitespace controls (newlines, tabs) become spaces.
    Reads O(width) characters of `text`, however long it is."""
    if width <= 0:
        return ""
    out: list[str] = []
    used = 0
    mark = False
    cut = False
    for char in text:
        if flow and char in "\n\r\t\v\f":
            char = " "
        shown, columns, mark = _cell(char, mark)
        if used + columns > width:
            cut = True
            break
        out.append(shown)
        used += columns
    if not cut:
        return "".join(out)
    while out and used + 1 > width:  # room for the ellipsis
        used -= columns_of(out.pop())
    return "".join(out) + ELLIPSIS


def columns_of(shown: str) -> int:
    """Columns of text already made safe by `fit`."""
    total = 0
    mark = False
    for char in shown:
        _, columns, mark = _cell(char, mark)
        total += columns
    return total


def safe(text: str) -> str:
    """`text` with every control and format character written as an escape
    (newlines and tabs as spaces): one line, whatever it held."""
    if text.isprintable():
        return text  # the common case, in C
    return fit(text, sys.maxsize, flow=True)  # no width: nothing is cut
