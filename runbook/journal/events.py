"""What both journal backends share: events as they are encoded, hashed and folded.

An event is (at, run_id, kind, change); a change is {"table", "op", "row"}
(plus "expect" for a conditional update). Rows of the tables in TABLES
(`runs`, `incidents`, `deliveries`, the fire ledger, …) are mirrored into
tables; `steps` exist only as events and are folded on read. What is hashed
is the canonical JSON text the backend stores (runbook.journal.hashing), so
both backends hash alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import orjson

from runbook.errors import JournalError
from runbook.journal import hashing
from runbook.journal.records import RunRecord, StepRecord


class Conflict(JournalError):
    """A conditional change found its row changed by someone else: nothing was written."""


class AppendUnknown(JournalError):
    """The connection was lost while an append committed, and whether it did
    could not be told: it is not made again (that could record it twice)."""


GENESIS = hashing.GENESIS
CHECKPOINTS = "checkpoints"  # the `table` of checkpoint events: no table, no run

JSON_COLUMNS = {
    "extra",
    "selection",
    "vars",
    "counts",
    "params",
    "result",
    "registered",
    "notices",
    "gates",
    "history",
    "consent",
    "participants",
    "run_ids",
    "objective_results",
    "approvers",
}
# Tables whose rows are replayed from events by verify(); keyed by these columns.
TABLES = {
    "runs": ("id",),
    "incidents": ("id",),
    "deliveries": ("id",),
    "attempts": ("delivery_id", "attempt"),
    "authorizations": ("id",),
    "fires": ("id",),  # the scheduler's ledger (runbook.schedule)
    "pauses": ("id",),
    "drills": ("id",),  # drills (runbook.drill)
    "drill_notes": ("id",),
    "approvals": ("id",),  # approvals (runbook.approval)
    "approval_votes": ("id",),
}


# What the standard encoder does with default=str, orjson does too: dates and
# dataclasses are passed to str() rather than given orjson's own forms.
_ORJSON = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def dumps(value: Any) -> str:
    """Compact JSON. orjson: every step writes two records, and the standard
    encoder was a tenth of a step's overhead; what orjson refuses (integers past
    64 bits) goes to the standard one. Either text is what gets hashed."""
    try:
        return orjson.dumps(value, default=str, option=_ORJSON).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, separators=(",", ":"), default=str)


def canonical(value: Any) -> str:
    """A payload as stored: canonical JSON (sorted keys), so that what is
    hashed is the stored text itself (runbook.journal.hashing)."""
    return hashing.canonical(value)


def encode(row: dict[str, Any]) -> dict[str, Any]:
    """A row as stored: JSON columns as JSON text."""
    return {k: (dumps(v) if k in JSON_COLUMNS and v is not None else v) for k, v in row.items()}


# Tables that exist only as events (folded on read).
FOLDED = {"steps": ("run_id", "seq")}

Prepared = tuple[str, str | None, str, dict[str, Any], str | None]


def prepare(events: Iterable[tuple[str, str | None, str, dict[str, Any]]]) -> list[Prepared]:
    """Encode events ahead of `append_prepared` (pure: can run on another thread)."""
    out: list[Prepared] = []
    for at, run_id, kind, change in events:
        if change["table"] in FOLDED:
            # No table to mirror: the row goes into the payload as it is.
            out.append((at, run_id, kind, change, canonical(change)))
        elif change["table"] == CHECKPOINTS:
            out.append((at, run_id, kind, change, None))  # made where the head is known
        else:
            out.append((at, run_id, kind, {**change, "row": encode(change["row"])}, None))
    return out


Row = TypeVar("Row")


def in_parts(rows: Sequence[Row], size: int) -> Iterator[Sequence[Row]]:
    """`rows` in parts of at most `size`, each a power of two long: a
    backend's statements over many rows at once (one execute for dozens of
    rows, where executemany steps once a row). A statement's text is one per
    row count, and a fleet's batches come in every count: in powers of two,
    seven texts up to 64, which the server (or SQLite) parses and plans once
    and then keeps prepared, where a text per count was parsed and planned
    anew nearly every time (a fleet's batches appended again into a
    PostgreSQL journal, bench/journal_batches_bench.py: its server's CPU
    0.40 ms a run in parts of up to 100 rows, 0.34 in powers of two)."""
    start = 0
    while start < len(rows):
        count = 1 << (min(len(rows) - start, size).bit_length() - 1)
        yield rows[start : start + count]
        start += count


def flat(rows: Sequence[Sequence[object]]) -> list[object]:
    """The parameters of a statement over `rows`, row after row."""
    return [value for row in rows for value in row]


def checkpoint_request(at: str) -> tuple[str, None, str, dict[str, Any]]:
    """An event asking for a signed checkpoint of everything before it, in the
    same transaction (nothing is written when the journal has no key)."""
    return (at, None, "checkpoint", {"table": CHECKPOINTS, "op": "request"})


STEP_COLUMNS = (
    "idx",
    "number",
    "key",
    "name",
    "kind",
    "phase",
    "undoes",
    "status",
    "reason",
    "started_at",
    "ended_at",
    "duration_ms",
    "severity",
    "error",
    "sqlstate",
    "rendered",
    "params",
    "rowcount",
    "result",
    "registered",
    "notices",
    "gates",
    "attempts",
    "history",
    "note",
    "xid",
)


def fold_steps(run_id: str, payloads: Iterable[str]) -> list[StepRecord]:
    """A run's steps from its events' payloads, in event order: each step's
    first record inserts it, later ones update it."""
    steps: dict[int, dict[str, Any]] = {}
    for payload in payloads:
        change = json.loads(payload)
        if change["table"] != "steps":
            continue
        row = change["row"]
        if change["op"] == "insert":
            steps[row["seq"]] = dict(row)
        elif row["seq"] in steps:
            steps[row["seq"]].update(row)
    out = []
    for seq in sorted(steps):
        step = {"run_id": run_id, "seq": seq, **dict.fromkeys(STEP_COLUMNS), **steps[seq]}
        out.append(StepRecord.from_row(decode(step)))
    return out


def decode(row: dict[str, Any]) -> dict[str, Any]:
    """A row as read: JSON columns parsed."""
    for key in JSON_COLUMNS & set(row):
        if isinstance(row[key], str):
            row[key] = json.loads(row[key])
    return row


def unique_run(
    rows: list[dict[str, Any]], steps_of: Callable[[str], list[StepRecord]]
) -> RunRecord | None:
    """The one run an id or prefix matched, with its steps (None: none, or several)."""
    if len(rows) != 1:
        return None
    return RunRecord.from_row(rows[0], steps_of(rows[0]["id"]))


def planned_note_in(events: list[dict[str, Any]], delivery_id: int) -> dict[str, Any] | None:
    """The note a `delivery.planned` event among `events` (newest first) kept."""
    for event in events:
        change = json.loads(event["payload"])
        if change.get("row", {}).get("id") == delivery_id and "note" in change:
            note: dict[str, Any] = change["note"]
            return note
    return None


def checkpoint_in(row: dict[str, Any] | None, position: str) -> tuple[int, Any] | None:
    """(position, data) of a checkpoint event's row."""
    if row is None:
        return None
    try:
        return int(row[position]), json.loads(row["payload"])["row"]
    except (ValueError, TypeError, KeyError) as exc:
        raise JournalError(
            f"the journal's last checkpoint cannot be read ({exc}): runbook journal verify"
        ) from None
