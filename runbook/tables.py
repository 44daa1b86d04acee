"""A query step's rows for people: cells, aligned columns, psql's expanded view.

Values arrive as the step's result shows them (runbook.results.to_json): json
and jsonb as JSON, intervals and bytea as PostgreSQL writes them. Nothing is
dropped without saying so: a table wider than MAX_COLUMNS says how many
columns it leaves out, and a result too wide for the terminal is shown one
field per line, like psql's `\\x auto` (`--expanded` forces it).
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any

MAX_COLUMNS = 8
MAX_CELL = 40
MAX_ROWS = 10


@dataclass(frozen=True)
class Table:
    columns: list[str]  # every column of the result
    rows: list[list[str]]  # the rows shown, one cell per column
    total: int  # rows the result had


def text(value: Any, null: str = "NULL") -> str:
    """A shown value (runbook.results.to_json) as text: json as JSON, a
    boolean as psql shows it, NULL as `null`."""
    if value is None:
        return null
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value)


def cell(value: Any) -> str:
    """One value on one line, at most MAX_CELL wide."""
    shown = text(value).replace("\n", " ")
    return shown if width(shown) <= MAX_CELL else _cut(shown, MAX_CELL - 1) + "…"


def width(text: str) -> int:
    """Columns `text` takes on a terminal: wide (CJK, emoji) characters two,
    combining marks none."""
    total = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        total += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return total


def _cut(text: str, limit: int) -> str:
    out, used = [], 0
    for char in text:
        w = width(char)
        if used + w > limit:
            break
        out.append(char)
        used += w
    return "".join(out)


def _pad(text: str, size: int) -> str:
    return text + " " * (size - width(text))


def table_of(result: dict[str, Any], shown_rows: int | None) -> Table | None:
    rows = result.get("rows")
    if not rows:
        return None
    columns = [str(c) for c in result.get("columns") or rows[0].keys()]
    shown = rows[: shown_rows or MAX_ROWS]
    cells = [[cell(row.get(c)) for c in columns] for row in shown]
    return Table(columns, cells, int(result.get("rows_total", len(rows))))


def _widths(table: Table) -> list[int]:
    """Each shown column's width: its name's or its widest cell's."""
    columns = table.columns[:MAX_COLUMNS]
    return [max([width(c), *(width(r[i]) for r in table.rows)]) for i, c in enumerate(columns)]


def natural_width(table: Table, indent: int = 7) -> int:
    """How wide the aligned view of the shown columns is."""
    widths = _widths(table)
    return indent + sum(widths) + 2 * (len(widths) - 1)


def aligned_lines(table: Table, indent: str = "       ") -> list[str]:
    """Header and rows in columns (at most MAX_COLUMNS; the rest counted)."""
    columns = table.columns[:MAX_COLUMNS]
    rows = [r[:MAX_COLUMNS] for r in table.rows]
    if len(columns) == 1:  # a count, a status: most checks
        lines = [indent + columns[0].rstrip(), *(indent + row[0].rstrip() for row in rows)]
    else:
        widths = _widths(table)
        lines = [
            indent + "  ".join(_pad(c, w) for c, w in zip(line, widths, strict=True)).rstrip()
            for line in (columns, *rows)
        ]
    return lines + footer(table, expanded=False, indent=indent)


def expanded_lines(table: Table, indent: str = "       ") -> list[str]:
    """psql's expanded view: each row a record, one `column | value` per line."""
    name_width = max(width(c) for c in table.columns)
    lines = []
    for number, row in enumerate(table.rows, start=1):
        lines.append(f"{indent}-[ RECORD {number} ]" + "-" * max(4, name_width - 8))
        lines.extend(
            f"{indent}{_pad(c, name_width)} | {value}"
            for c, value in zip(table.columns, row, strict=True)
        )
    return lines + footer(table, expanded=True, indent=indent)


def footer(table: Table, *, expanded: bool, indent: str = "       ") -> list[str]:
    """What the view leaves out, said: rows, and columns past MAX_COLUMNS."""
    notes = []
    if table.total > len(table.rows):
        notes.append(f"{table.total - len(table.rows)} more row(s)")
    hidden = 0 if expanded else len(table.columns) - MAX_COLUMNS
    if hidden > 0:
        notes.append(
            f"+{hidden} column(s): {', '.join(table.columns[MAX_COLUMNS:])} (--expanded shows them)"
        )
    return [f"{indent}({note})" for note in notes]


def lines_for(table: Table, expanded: bool, room: int | None) -> list[str]:
    """The aligned view, or the expanded one when asked or when the aligned
    one would be wider than `room` (a terminal's width; None: never)."""
    if expanded or (room is not None and natural_width(table) > room):
        return expanded_lines(table)
    return aligned_lines(table)
