"""What a step leaves behind for later steps (`register:`) and for the journal.

Results are plain objects with attributes, so templates read `crit.scalar`,
`crit.first.n`, `dump.status`, `health.json.status`. `serialize()` gives a
JSON-safe form with a bounded sample of rows; `restore()` rebuilds a result from
it (resume restores registered variables from the journal).
"""

from __future__ import annotations

import datetime
import decimal
import ipaddress
import json
import uuid
from collections.abc import Mapping
from typing import Any

from runbook import typedjson

MAX_ROWS = 100_000  # rows kept in memory per step; a check tool's results are small


_PLAIN = frozenset({type(None), bool, int, str})


def to_json(value: Any) -> Any:
    """A JSON-safe copy of a database or Python value, shown as PostgreSQL
    writes it: a numeric as its exact text (every numeric of a column the same
    JSON type), an interval as `1 day 02:00:00`, a bytea as `\\x…`; json and
    jsonb stay JSON. (What resume binds again keeps its type: `typed`.)"""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, bool | int | str):  # subclasses (enums …)
        return value
    if isinstance(value, float):
        return (
            value if value == value and value not in (float("inf"), float("-inf")) else str(value)
        )
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return interval_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, uuid.UUID | ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    if isinstance(value, Result):
        return value.serialize(sample=None)
    return str(value)


def interval_text(value: datetime.timedelta) -> str:
    """An interval as PostgreSQL writes it (IntervalStyle postgres):
    `1 day 02:00:00`, `3 days`, `00:00:01.5`, `-1 days -02:00:00`."""
    sign = "-" if value < datetime.timedelta(0) else ""
    whole = -value if sign else value
    days, seconds, micro = whole.days, whole.seconds, whole.microseconds
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{sign}{hours:02d}:{minutes:02d}:{secs:02d}" + (
        f".{micro:06d}".rstrip("0") if micro else ""
    )
    if not days:
        return clock
    day_part = f"{sign}{days} day" + ("" if days == 1 and not sign else "s")
    return day_part if not (seconds or micro) else f"{day_part} {clock}"


def _row_json(row: dict[str, Any]) -> dict[str, Any]:
    for value in row.values():
        if type(value) not in _PLAIN:
            return {k: to_json(v) for k, v in row.items()}
    return dict(row)  # all plain already: a copy, not a walk


class Result:
    """Base of every registered result."""

    kind = "result"
    skipped = False
    duration_ms: float = 0.0

    def serialize(self, sample: int | None = 20) -> dict[str, Any]:
        return {"kind": self.kind, "duration_ms": round(self.duration_ms, 3)}

    def typed(self, sample: int | None = 20) -> dict[str, Any]:
        """As `serialize`, with every value in the form `restore` gives back
        with its type (runbook.typedjson): what the journal keeps for resume."""
        return self.serialize(sample)

    def plain(self) -> bool:
        """Whether `serialize` already gives every value back with its type
        (only None, bool, int, str): then `typed` adds nothing."""
        return True

    @property
    def ok(self) -> bool:
        return True


class QueryResult(Result):
    """Rows from SQL: `rows`, `first`, `scalar`, `rowcount`, `columns`, `notices`."""

    kind = "query"
    __slots__ = (
        "columns",
        "duration_ms",
        "export",
        "notices",
        "rowcount",
        "rows",
        "status",
        "truncated",
    )

    def __init__(
        self,
        rows: list[dict[str, Any]],
        columns: list[str],
        rowcount: int,
        notices: list[str],
        duration_ms: float,
        status: str = "",
        truncated: bool = False,
    ) -> None:
        self.rows = rows
        self.columns = columns
        self.rowcount = rowcount
        self.notices = notices
        self.duration_ms = duration_ms
        self.status = status
        self.truncated = truncated
        self.export: dict[str, Any] | None = None  # the file `export:` wrote (path, rows, sha256)

    @property
    def first(self) -> dict[str, Any] | None:
        return self.rows[0] if self.rows else None

    @property
    def scalar(self) -> Any:
        return next(iter(self.rows[0].values()), None) if self.rows else None

    def serialize(self, sample: int | None = 20) -> dict[str, Any]:
        rows = self.rows if sample is None else self.rows[:sample]
        return {
            "kind": self.kind,
            "columns": self.columns,
            "rowcount": self.rowcount,
            "rows": [_row_json(row) for row in rows],
            "rows_total": len(self.rows),
            "truncated": self.truncated or len(rows) < len(self.rows),
            "notices": self.notices,
            "status": self.status,
            "duration_ms": round(self.duration_ms, 3),
            **({"export": self.export} if self.export else {}),
        }

    def plain(self) -> bool:
        return all(type(v) in _PLAIN for row in self.rows for v in row.values())

    def typed(self, sample: int | None = 20) -> dict[str, Any]:
        rows = self.rows if sample is None else self.rows[:sample]
        shown = self.serialize(sample)
        return {**shown, "rows": [typedjson.encode(row) for row in rows]}

    def __repr__(self) -> str:
        return f"<QueryResult rows={len(self.rows)} rowcount={self.rowcount}>"


class ShellResult(Result):
    """A command's `status` (exit code), `stdout`, `stderr`."""

    kind = "shell"

    def __init__(
        self,
        argv: list[str],
        status: int,
        stdout: str,
        stderr: str,
        duration_ms: float,
        ok: bool,
        client: dict[str, Any] | None = None,
    ) -> None:
        self.argv = argv
        # Which PostgreSQL client programs were first on PATH (runbook.pg.pgtools).
        self.client = client
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
        self.duration_ms = duration_ms
        self._ok = ok

    @property
    def ok(self) -> bool:
        return self._ok

    @property
    def rc(self) -> int:
        return self.status

    def serialize(self, sample: int | None = 20) -> dict[str, Any]:
        limit = None if sample is None else 4000
        return {
            "kind": self.kind,
            "argv": self.argv,
            "status": self.status,
            "ok": self._ok,
            "stdout": self.stdout[-limit:] if limit else self.stdout,
            "stderr": self.stderr[-limit:] if limit else self.stderr,
            "duration_ms": round(self.duration_ms, 3),
            **({"client": self.client} if self.client is not None else {}),
        }


class HttpResult(Result):
    """An HTTP response: `status`, `headers`, `text`, `json`."""

    kind = "http"

    def __init__(
        self,
        url: str,
        status: int,
        headers: dict[str, str],
        text: str,
        duration_ms: float,
        ok: bool,
    ) -> None:
        self.url = url
        self.status = status
        self.headers = headers
        self.text = text
        self.duration_ms = duration_ms
        self._ok = ok
        try:
            self.json: Any = json.loads(text) if text else None
        except ValueError:
            self.json = None

    @property
    def ok(self) -> bool:
        return self._ok

    def serialize(self, sample: int | None = 20) -> dict[str, Any]:
        limit = None if sample is None else 4000
        return {
            "kind": self.kind,
            "url": self.url,
            "status": self.status,
            "ok": self._ok,
            "headers": self.headers,
            "text": self.text[:limit] if limit else self.text,
            "duration_ms": round(self.duration_ms, 3),
        }


class ValueResult(Result):
    """Results of gates, classify, set, confirm: named values as attributes."""

    kind = "value"

    def __init__(self, kind: str = "value", duration_ms: float = 0.0, **values: Any) -> None:
        self.kind = kind
        self.duration_ms = duration_ms
        self.values = values
        for key, value in values.items():
            setattr(self, key, value)

    def serialize(self, sample: int | None = 20) -> dict[str, Any]:
        return {
            "kind": self.kind,
            **{k: to_json(v) for k, v in self.values.items()},
            "duration_ms": round(self.duration_ms, 3),
        }

    def plain(self) -> bool:
        return all(type(v) in _PLAIN for v in self.values.values())

    def typed(self, sample: int | None = 20) -> dict[str, Any]:
        return {**self.serialize(0), **typedjson.encode(self.values)}


class SkippedResult(QueryResult):
    """What a skipped step registers: no rows, `skipped` true."""

    kind = "skipped"
    skipped = True

    def __init__(self, reason: str = "") -> None:
        super().__init__([], [], 0, [], 0.0)
        self.reason = reason

    def serialize(self, sample: int | None = 20) -> dict[str, Any]:
        return {"kind": self.kind, "reason": self.reason}


class LoopResult(Result):
    """A looped step's summary: `results` (one per iteration, in order; a
    skipped or failed iteration without a result has a skipped one), `items`,
    `failed` (how many iterations failed), `ok` (none did)."""

    kind = "loop"

    def __init__(
        self, results: list[Result], items: list[Any], failed: int, duration_ms: float = 0.0
    ) -> None:
        self.results = results
        self.items = items
        self.failed = failed
        self.duration_ms = duration_ms

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def serialize(self, sample: int | None = 20) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "results": [r.serialize(sample) for r in self.results],
            "items": to_json(self.items),
            "failed": self.failed,
            "duration_ms": round(self.duration_ms, 3),
        }


def restore(data: Mapping[str, Any]) -> Result:
    """Rebuild a registered result from its serialized form (for resume)."""
    kind = data.get("kind")
    if kind == "query":
        return QueryResult(
            [typedjson.decode(dict(r)) for r in data.get("rows", [])],
            list(data.get("columns", [])),
            int(data.get("rowcount", 0)),
            list(data.get("notices", [])),
            float(data.get("duration_ms", 0.0)),
            str(data.get("status", "")),
            bool(data.get("truncated", False)),
        )
    if kind == "shell":
        return ShellResult(
            list(data["argv"]),
            int(data["status"]),
            data["stdout"],
            data["stderr"],
            float(data["duration_ms"]),
            bool(data["ok"]),
            data.get("client"),
        )
    if kind == "http":
        return HttpResult(
            data["url"],
            int(data["status"]),
            dict(data["headers"]),
            data["text"],
            float(data["duration_ms"]),
            bool(data["ok"]),
        )
    if kind == "skipped":
        return SkippedResult(str(data.get("reason", "")))
    if kind == "loop":
        return LoopResult(
            [restore(r) for r in data.get("results", [])],
            list(data.get("items", [])),
            int(data.get("failed", 0)),
            float(data.get("duration_ms", 0.0)),
        )
    values = {k: typedjson.decode(v) for k, v in data.items() if k not in ("kind", "duration_ms")}
    return ValueResult(str(kind or "value"), float(data.get("duration_ms", 0.0)), **values)


def _register_safe_attributes() -> None:
    from runbook.sqltemplate import tmplfast

    query = frozenset(
        {
            "rows",
            "first",
            "scalar",
            "rowcount",
            "columns",
            "notices",
            "duration_ms",
            "status",
            "truncated",
            "skipped",
            "ok",
        }
    )
    tmplfast.SAFE_ATTRIBUTES[QueryResult] = query
    tmplfast.SAFE_ATTRIBUTES[SkippedResult] = query | {"reason"}
    tmplfast.SAFE_ATTRIBUTES[ShellResult] = frozenset(
        {"argv", "status", "rc", "stdout", "stderr", "duration_ms", "ok", "skipped"}
    )
    tmplfast.SAFE_ATTRIBUTES[LoopResult] = frozenset(
        {"results", "items", "failed", "duration_ms", "ok", "skipped"}
    )
    tmplfast.SAFE_ATTRIBUTES[HttpResult] = frozenset(
        {"url", "status", "headers", "text", "json", "duration_ms", "ok", "skipped"}
    )


_register_safe_attributes()
