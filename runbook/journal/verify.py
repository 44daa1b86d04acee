"""`runbook journal verify`: every kind of damage to the journal as a list of problems.

All reads happen in one read transaction: in WAL mode that is one snapshot,
so runs writing meanwhile are simply not seen, rather than seen half-written.
Nothing is written; a journal too damaged to read is one more problem.
The checks: the hash chain as stored (each event's `prev_hash` is the hash
before it, and its content gives its hash), the chain recomputed from the
first event (what checkpoints are compared with), seqs without gaps, payloads
that parse, the tables replayed from the events, checkpoints recorded in the
journal, and a checkpoint kept elsewhere (a cut-off tail, a recomputed chain).
"""

from __future__ import annotations

import json
import sqlite3
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook.journal import hashing
from runbook.journal.events import CHECKPOINTS, FOLDED, TABLES
from runbook.journal.sqlite_schema import TABLES_SINCE

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from runbook.journal.checkpoint import Checkpoint

_EVENT_COLUMNS = ("seq", "at", "run_id", "kind", "payload", "prev_hash", "hash")
_NEVER = 2**63  # hash_version's from_seq when no event was hashed with version 2


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    count: int = 0  # events read


def verify_file(
    path: Path, checkpoint: Checkpoint | None = None, public: Ed25519PublicKey | None = None
) -> Report:
    """Verify the journal at `path` without creating, migrating or writing it."""
    if not path.is_file():  # nothing recorded yet, or deleted: only a checkpoint can tell
        report = Report(notes=[f"no journal at {path}"])
        compare_checkpoint(report, checkpoint, None, 0)
        return report
    try:
        db = connect_reading(path)
    except sqlite3.Error as exc:
        return Report([f"cannot open the journal {path}: {exc}"])
    try:
        report = verify_connection(db, checkpoint, public)
    except sqlite3.Error as exc:
        report = Report([f"cannot read the journal {path}: {exc}"])
    finally:
        db.close()
    report.problems = [_printable(p) for p in report.problems]
    return report


def connect_reading(path: Path) -> sqlite3.Connection:
    """A connection that never creates, migrates or writes the journal."""
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=rw"
    db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)
    # Text that is not UTF-8 is read as it is (and then fails its hash)
    # rather than stopping the reading.
    db.text_factory = lambda raw: raw.decode("utf-8", "surrogateescape")
    try:
        db.execute("PRAGMA query_only = ON")
    except sqlite3.Error:
        db.close()
        raise
    return db


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def verify_connection(
    db: sqlite3.Connection,
    checkpoint: Checkpoint | None = None,
    public: Ed25519PublicKey | None = None,
) -> Report:
    report = Report()
    try:
        db.execute("BEGIN")  # deferred: the snapshot is taken at the first read
        try:
            Verifier(db, report, public).run(checkpoint)
        finally:
            db.execute("ROLLBACK")
    except sqlite3.Error as exc:
        report.problems.append(f"cannot read the journal: {exc}")
    return report


class Verifier:
    """The checks; `db` is a DB-API connection (the PostgreSQL journal's
    verifier, runbook.journal.postgres_verify, builds on this one)."""

    # Which schema version added each mirrored table that the first did not have.
    since = TABLES_SINCE

    def __init__(self, db: Any, report: Report, public: Ed25519PublicKey | None) -> None:
        self.db = db
        self.report = report
        self.problems = report.problems
        self.public = public
        self.replay: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {t: {} for t in TABLES}
        # The chain from the first event, not as stored (None past a payload
        # that cannot be read): what checkpoints are compared with.
        self.recomputed: str | None = hashing.GENESIS
        self.at_count: dict[int, str | None] = {}  # recomputed hash at the seq a checkpoint names
        self.signed_upto = 0
        self.other_keys = 0
        self.version = _NEVER  # the schema version meta names (unknown: the latest)

    def run(self, checkpoint: Checkpoint | None) -> None:
        tables = {
            r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if not tables:  # being created this instant, or replaced by an empty file
            self.report.notes.append("the journal is empty: no tables yet")
            compare_checkpoint(self.report, checkpoint, self.public, 0)
            return
        for name in ("meta", "events"):
            if name not in tables:
                self.missing(name)
        v2_from = self._meta() if "meta" in tables else _NEVER
        last = 0
        if "events" in tables and self._has_columns("events", _EVENT_COLUMNS):
            last = self._events(v2_from, checkpoint.count if checkpoint else 0)
        for table in TABLES:
            if table in tables:
                self._compare_table(table)
            else:
                self.missing(table)
        if (
            self.report.count == 0
            and "runs" in tables
            and self.db.execute("SELECT 1 FROM runs LIMIT 1").fetchone()
        ):
            self.problems.append("runs exist but no events: the event log was removed")
        if self.public is not None:
            self._signed_coverage(last)
        compare_checkpoint(self.report, checkpoint, self.public, last, self.at_count)

    def _signed_coverage(self, last: int) -> None:
        """What the signed checkpoints inside the journal cover (they can be
        removed with what they cover: the ones kept elsewhere are what count)."""
        notes = self.report.notes
        if self.other_keys:
            notes.append(
                f"{self.other_keys} checkpoint(s) in the journal name another key: not checked"
            )
        if last and not self.signed_upto:
            notes.append("no checkpoint in the journal is signed by this key")
        elif last > self.signed_upto + 1:
            notes.append(
                f"events {self.signed_upto + 2} to {last} come after the last signed checkpoint in the journal"
            )

    def missing(self, table: str) -> None:
        """A table that is not there. A journal of an earlier schema version,
        not yet opened by this runbook (which would migrate it), lacks the
        mirrored tables added since: nothing is wrong unless an event writes to
        one (so those are asked about once the events are replayed)."""
        if self.since.get(table, 0) > self.version and not self.replay.get(table):
            return
        self.problems.append(f"table {table} is missing: dropped, or not a runbook journal")

    def _meta(self) -> int:
        rows = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        if "schema_version" not in rows:
            self.problems.append("meta has no schema_version: wiped, or not a runbook journal")
        elif str(rows["schema_version"]).isdigit():
            self.version = int(rows["schema_version"])
        if "hash_version" not in rows:
            return _NEVER
        try:
            return int(json.loads(rows["hash_version"])["from_seq"])
        except (ValueError, TypeError, KeyError):
            self.problems.append(f"meta hash_version is unreadable: {rows['hash_version']!r}")
            return 1

    def _has_columns(self, table: str, wanted: tuple[str, ...]) -> bool:
        have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
        missing = [c for c in wanted if c not in have]
        if missing:
            self.problems.append(f"table {table} has no column {', '.join(missing)}")
        return not missing

    def _events(self, v2_from: int, wanted: int) -> int:
        """Check every event in order; returns the last seq."""
        stored_prev = hashing.GENESIS
        expected = 1
        cursor = self.db.execute(f"SELECT {', '.join(_EVENT_COLUMNS)} FROM events ORDER BY seq")
        for seq, at, run_id, kind, payload, prev_hash, stored in cursor:
            self.report.count += 1
            if seq != expected:
                self.problems.append(f"events {expected} to {seq - 1} are missing")
            expected = seq + 1
            for name, value in (
                ("at", at),
                ("kind", kind),
                ("payload", payload),
                ("prev_hash", prev_hash),
                ("hash", stored),
            ):
                if not isinstance(value, str):
                    self.problems.append(f"event {seq}: {name} holds {_type(value)}, not text")
            if run_id is not None and not isinstance(run_id, str):
                self.problems.append(f"event {seq}: run_id holds {_type(run_id)}, not text")
            if prev_hash != stored_prev:
                self.problems.append(f"event {seq}: chain broken (previous hash does not match)")
            change = parse_payload(payload)
            if change is None:
                self.problems.append(f"event {seq}: payload is not JSON")
            own = event_hash(seq >= v2_from, prev_hash, at, run_id, kind, payload, change)
            if own != stored:
                self.problems.append(f"event {seq} ({kind}): content does not match its hash")
            previous = self.recomputed
            self.recomputed = event_hash(
                seq >= v2_from, previous, at, run_id, kind, payload, change
            )
            if seq == wanted:
                self.at_count[seq] = self.recomputed
            stored_prev = stored
            if change is not None:
                self._apply(seq, change, previous)
        return expected - 1

    def _apply(self, seq: int, change: Any, previous: str | None) -> None:
        """Replay one change; a checkpoint is checked against the chain before it."""
        if not (isinstance(change, dict) and isinstance(change.get("table"), str)):
            self.problems.append(f"event {seq}: payload is not a journal change")
            return
        table, op, row = change["table"], change.get("op"), change.get("row")
        if table in FOLDED:
            return  # no table to disagree with: the events are the steps
        if table == CHECKPOINTS:
            self._checkpoint_event(seq, row, previous)
            return
        if table not in TABLES or op not in ("insert", "update") or not isinstance(row, dict):
            self.problems.append(f"event {seq}: payload is not a journal change")
            return
        try:
            key = tuple(row.get(k) for k in TABLES[table])
            hash(key)
        except TypeError:
            self.problems.append(f"event {seq}: {table} row has an unusable key")
            return
        if op == "insert":
            self.replay[table][key] = dict(row)
        elif key in self.replay[table]:
            self.replay[table][key].update(row)

    def _checkpoint_event(self, seq: int, row: Any, previous: str | None) -> None:
        from runbook.errors import InputError
        from runbook.journal.checkpoint import parse, signature_problem

        try:
            cp = parse(row, f"event {seq}")
        except InputError as exc:
            self.problems.append(f"{exc} (a checkpoint recorded in the journal)")
            return
        if cp.count != seq - 1 or cp.head != previous:
            self.problems.append(
                f"event {seq}: checkpoint of event {cp.count} does not match the chain before it"
            )
        if self.public is None:
            return
        from runbook.journal.checkpoint import key_id

        if cp.key_id != key_id(self.public):
            self.other_keys += 1
            return
        why = signature_problem(cp, self.public)
        if why:
            self.problems.append(f"event {seq}: checkpoint of event {cp.count}: {why}")
        else:
            self.signed_upto = cp.count

    def _compare_table(self, table: str) -> None:
        keys = TABLES[table]
        cursor = self.db.execute(f"SELECT * FROM {table}")
        names = [d.name if hasattr(d, "name") else d[0] for d in cursor.description]
        actual: dict[tuple[Any, ...], dict[str, Any]] = {}
        for values in cursor:
            row = dict(zip(names, values, strict=True))
            actual[tuple(row.get(k) for k in keys)] = row
        for key, expected in self.replay[table].items():
            found = actual.pop(key, None)
            if found is None:
                self.problems.append(
                    f"{table} {key}: recorded in events but missing from the table"
                )
                continue
            for column, value in expected.items():
                if _normal(found.get(column)) != _normal(value):
                    self.problems.append(
                        f"{table} {key}: column {column} differs from the recorded events"
                    )
        for key in actual:
            self.problems.append(f"{table} {key}: row not recorded in events")


def compare_checkpoint(
    report: Report,
    cp: Checkpoint | None,
    public: Ed25519PublicKey | None,
    last: int,
    at_count: dict[int, str | None] | None = None,
) -> None:
    """The journal against a checkpoint kept elsewhere, and what that proves."""
    notes = report.notes
    if cp is None:
        notes.append(
            "no checkpoint given: the chain and the tables show records edited, deleted or "
            "inserted without recomputing the hashes; they cannot show a cut-off tail or a "
            "chain recomputed after an edit. Keep `runbook journal checkpoint` output "
            "elsewhere and pass it with --checkpoint."
        )
        return
    if cp.signature is None:
        notes.append(
            f"the checkpoint is unsigned: the journal is compared with it up to event {cp.count}, "
            "which shows a cut-off tail or a rewrite since it was taken, provided the checkpoint "
            "you kept is genuine; it carries no proof of who made it, so someone with write "
            "access to the journal and to where the checkpoint is kept can rewrite both. "
            "A key (runbook journal keygen) signs checkpoints."
        )
    elif public is None:
        notes.append(
            "the checkpoint is signed but no public key was given (--public-key) or configured: "
            "its signature was not checked, so it proves no more than an unsigned one"
        )
    else:
        from runbook.journal.checkpoint import signature_problem

        why = signature_problem(cp, public)
        if why:
            report.problems.append(f"checkpoint refused: {why}")
            return
        notes.append(
            f"checkpoint of {cp.at} signed by key {cp.key_id}: the signature holds; "
            f"events after {cp.count} are not covered by it"
        )
    if cp.count == 0:
        return
    if last < cp.count:
        report.problems.append(
            f"the journal holds {last} event(s), the checkpoint of {cp.at} counts {cp.count}: "
            "events were removed from the end (a cut-off tail), or the journal was replaced"
        )
    elif (at_count or {}).get(cp.count) != cp.head:
        report.problems.append(
            f"event {cp.count}: the chain there differs from the checkpoint of {cp.at}: "
            "events up to it were changed (hashes recomputed or not), removed or inserted"
        )


def event_hash(
    v2: bool, prev: Any, at: Any, run_id: Any, kind: Any, payload: Any, change: Any
) -> str | None:
    """An event's hash from `prev` and its content; None if it cannot be computed."""
    if not v2:
        return hashing.hash_v1(prev, at, run_id, kind, payload)
    if change is None or not isinstance(prev, str):
        return None
    try:
        record = f"{hashing.canonical([at, run_id, kind])}\n{hashing.canonical(change)}"
    except (TypeError, ValueError, RecursionError):
        return None
    return hashing.chain(prev, hashing.sha(record))


def parse_payload(payload: Any) -> Any:
    if not isinstance(payload, str):
        return None
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):
        return None


def _normal(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _type(value: Any) -> str:
    if value is None:
        return "NULL"
    return {int: "an integer", float: "a real", bytes: "a blob"}.get(
        type(value), type(value).__name__
    )
