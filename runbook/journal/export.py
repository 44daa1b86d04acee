"""A few runs out of the journal, checkable against a checkpoint without the rest.

An export holds the hash just before the first event of the runs, then every
event up to the checkpoint's count: the runs' own events whole, every other
one only by its record digest (runbook.journal.hashing). Recomputing the chain
from there must end at the checkpoint's head: the runs' events are exactly
what was recorded, in their places, and nothing of the other events is shown.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook.errors import InputError, JournalError
from runbook.journal import hashing, postgres_export
from runbook.journal.verify import Report, compare_checkpoint, connect_reading

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from runbook.journal.checkpoint import Checkpoint

FORMAT = "runbook-journal-export/1"


Keep = Callable[[dict[str, Any]], bool]


def export(
    path: Path, run_ids: list[str], upto: int | None, keep: Keep | None = None
) -> dict[str, Any]:
    """The runs `run_ids` (ids or unique prefixes), up to event `upto` (default:
    the last); `keep` says which other events go whole too (a drill's records)."""
    try:
        db = connect_reading(path)
        try:
            db.execute("BEGIN")  # one snapshot
            return _export(db, run_ids, upto, keep)
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise JournalError(f"cannot read the journal {path}: {exc}") from None


def _export(
    db: sqlite3.Connection, run_ids: list[str], upto: int | None, keep: Keep | None
) -> dict[str, Any]:
    wanted = set()
    for given in run_ids:
        found = db.execute(
            "SELECT id FROM runs WHERE id = ? OR id LIKE ?", (given, given + "%")
        ).fetchall()
        if len(found) != 1:
            raise InputError(f"no run {given!r} in the journal (or the prefix is ambiguous)")
        wanted.add(found[0][0])
    row = db.execute("SELECT value FROM meta WHERE key = 'hash_version'").fetchone()
    v2_from = int(json.loads(row[0])["from_seq"]) if row else None
    first = (
        db.execute(
            f"SELECT min(seq) FROM events WHERE run_id IN ({', '.join('?' * len(wanted))})",
            sorted(wanted),
        ).fetchone()[0]
        if wanted
        else None
    )
    kept: set[int] = set()
    if keep is not None:
        for seq, payload in db.execute("SELECT seq, payload FROM events WHERE run_id IS NULL"):
            if keep(json.loads(payload)):
                kept.add(int(seq))
        first = min([first, *kept]) if first is not None else min(kept, default=None)
    if first is None:
        raise InputError("those runs have no events")
    if v2_from is None or first < v2_from:
        raise InputError("runs recorded by an older runbook (hash version 1) cannot be exported")
    last = upto if upto is not None else db.execute("SELECT max(seq) FROM events").fetchone()[0]
    if last < first:
        raise InputError(f"the runs start at event {first}, after event {last}")
    prev = db.execute("SELECT prev_hash FROM events WHERE seq = ?", (first,)).fetchone()[0]
    events: list[dict[str, Any]] = []
    cursor = db.execute(
        "SELECT seq, at, run_id, kind, payload FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq",
        (first, last),
    )
    for seq, at, run_id, kind, payload in cursor:
        change = json.loads(payload)
        if run_id in wanted or seq in kept:
            events.append({"seq": seq, "at": at, "run_id": run_id, "kind": kind, "payload": change})
        else:
            digest = hashing.sha(
                f"{hashing.canonical([at, run_id, kind])}\n{hashing.canonical(change)}"
            )
            events.append({"seq": seq, "digest": digest})
    return {"format": FORMAT, "runs": sorted(wanted), "prev": prev, "events": events}


def verify(doc: Any, checkpoint: Checkpoint, public: Ed25519PublicKey | None) -> Report:
    """An export checked against a checkpoint (whose count it must reach)."""
    report = Report()
    if isinstance(doc, dict) and doc.get("format") == postgres_export.FORMAT:
        return postgres_export.verify(doc, checkpoint, public, _digest)
    if not (isinstance(doc, dict) and doc.get("format") == FORMAT):
        report.problems.append(f'not a runbook journal export (no "format": {FORMAT!r})')
        return report
    head = doc.get("prev")
    events = doc.get("events")
    if not isinstance(head, str) or not isinstance(events, list) or not events:
        report.problems.append('the export has no "prev" hash or no events')
        return report
    last = 0
    for i, event in enumerate(events):
        seq = event.get("seq") if isinstance(event, dict) else None
        if not isinstance(seq, int) or (last and seq != last + 1):
            report.problems.append(f"event {i + 1} of the export: seq {seq!r} is out of order")
            return report
        last = seq
        digest = _digest(event)
        if digest is None:
            report.problems.append(f"event {seq}: neither a whole event nor a digest")
            return report
        head = hashing.chain(head, digest)
        report.count += 1
    if last != checkpoint.count:
        report.problems.append(
            f"the export ends at event {last}, the checkpoint counts {checkpoint.count}: "
            "export up to a checkpoint (runbook journal export --checkpoint FILE)"
        )
        return report
    compare_checkpoint(report, checkpoint, public, last, {last: head})
    return report


def _digest(event: dict[str, Any]) -> str | None:
    if "payload" in event:
        fields = [event.get("at"), event.get("run_id"), event.get("kind")]
        try:
            record = f"{hashing.canonical(fields)}\n{hashing.canonical(event['payload'])}"
        except (TypeError, ValueError, RecursionError):
            return None
        return hashing.sha(record)
    digest = event.get("digest")
    return digest if isinstance(digest, str) else None
