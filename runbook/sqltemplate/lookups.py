"""`rows | by('column')`: a query's rows as a mapping from a key column to the row.

`dash.rows | by('metric_name')` (or `dash | by('metric_name')`) lets a gate
read `m['open_incidents'].value` instead of searching a list. A key that
appears twice is an error, not a silent choice of one row; so is a column the
rows do not have.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from runbook.errors import TemplateError


def by(rows: Any, column: Any) -> dict[Any, Any]:
    """The rows keyed by `column`'s value."""
    source = getattr(rows, "rows", rows)  # a registered query result, or its rows
    if isinstance(source, Mapping | str | bytes) or not isinstance(source, Iterable):
        raise TemplateError(f"by({column!r}) takes a list of rows, not {type(source).__name__}")
    out: dict[Any, Any] = {}
    for row in source:
        if not isinstance(row, Mapping):
            raise TemplateError(f"by({column!r}): a row is a {type(row).__name__}, not a mapping")
        if column not in row:
            have = ", ".join(map(str, row)) or "none"
            raise TemplateError(f"by({column!r}): the rows have no column {column!r} ({have})")
        key = row[column]
        if key in out:
            raise TemplateError(f"by({column!r}): {key!r} is the key of more than one row")
        out[key] = row
    return out
