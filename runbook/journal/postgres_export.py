"""A few runs out of a PostgreSQL journal, checkable against a checkpoint alone.

There each run's events chain among themselves, and the run's seal (its
chain's length and head) is a journal-wide event; checkpoints count the
journal-wide chain (runbook.journal.postgres). So an export holds each run's
own chain whole, and the journal-wide chain from just before the first of the
runs' seals up to the checkpoint's count: the seals of the runs whole, every
other event only by its record digest. Verifying recomputes each run's chain
against its seal, then the journal-wide chain against the checkpoint: the runs
are exactly what was recorded, and nothing of the other events is shown.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg

from runbook.errors import InputError, JournalError
from runbook.journal import hashing
from runbook.journal.migrate import connect
from runbook.journal.postgres import SEALS
from runbook.journal.postgres_rows import JOURNAL_WIDE
from runbook.journal.verify import Report, compare_checkpoint

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from runbook.journal.checkpoint import Checkpoint
    from runbook.journal.store import StoreConfig

FORMAT = "runbook-journal-export/2"


Keep = Callable[[dict[str, Any]], bool]


def export(
    config: StoreConfig, run_ids: list[str], upto: int | None, keep: Keep | None = None
) -> dict[str, Any]:
    """The runs `run_ids` (ids or unique prefixes) and the journal-wide chain up
    to event `upto` (default: its last), from one snapshot; `keep` says which
    journal-wide events go whole too (a drill's records)."""
    conn = connect(config)
    try:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return _export(conn, run_ids, upto, keep)
    except psycopg.Error as exc:
        raise JournalError(f"cannot read the journal: {exc}") from None
    finally:
        conn.close()


def _export(
    conn: psycopg.Connection[Any], run_ids: list[str], upto: int | None, keep: Keep | None
) -> dict[str, Any]:
    wanted: list[str] = []
    for given in run_ids:
        found = conn.execute(
            "SELECT id FROM runs WHERE id = %s OR id LIKE %s", (given, given + "%")
        ).fetchall()
        if len(found) != 1:
            raise InputError(f"no run {given!r} in the journal (or the prefix is ambiguous)")
        wanted.append(str(found[0][0]))
    chains = {run: _whole(conn, run) for run in sorted(set(wanted))}
    seals = {}
    for pos, payload in conn.execute(
        "SELECT pos, payload FROM events WHERE stream = %s AND kind = 'run.sealed' ORDER BY pos",
        (JOURNAL_WIDE,),
    ):
        run = json.loads(payload)["row"]["run"]
        if run in chains:
            seals[run] = int(pos)
    unsealed = sorted(set(chains) - set(seals))
    if unsealed:
        raise InputError(f"run {unsealed[0]} has not ended: its chain is not sealed yet")
    kept: set[int] = set()
    if keep is not None:
        for pos, payload in conn.execute(
            "SELECT pos, payload FROM events WHERE stream = %s ORDER BY pos", (JOURNAL_WIDE,)
        ):
            if keep(json.loads(payload)):
                kept.add(int(pos))
    if not seals and not kept:
        raise InputError("nothing to export")
    first = min([*seals.values(), *kept])
    last = upto if upto is not None else _length(conn)
    if last < max([*seals.values(), *kept]):
        raise InputError(f"the runs' seals come after journal-wide event {last}")
    prev = conn.execute(
        "SELECT prev_hash FROM events WHERE stream = %s AND pos = %s", (JOURNAL_WIDE, first)
    ).fetchone()
    events: list[dict[str, Any]] = []
    for pos, at, run_id, kind, payload in conn.execute(
        "SELECT pos, at, run_id, kind, payload FROM events WHERE stream = %s"
        " AND pos BETWEEN %s AND %s ORDER BY pos",
        (JOURNAL_WIDE, first, last),
    ):
        if pos in seals.values() or pos in kept:
            events.append(_event(pos, at, run_id, kind, payload))
        else:
            digest = hashing.record_digest(at, run_id, kind, payload)
            events.append({"seq": int(pos), "digest": digest})
    return {
        "format": FORMAT,
        "runs": sorted(chains),
        "chains": chains,
        "prev": str(prev[0]) if prev else hashing.GENESIS,
        "events": events,
    }


def _whole(conn: psycopg.Connection[Any], run: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT pos, at, run_id, kind, payload FROM events WHERE stream = %s ORDER BY pos", (run,)
    )
    return [_event(*row) for row in rows]


def _event(pos: int, at: str, run_id: str | None, kind: str, payload: str) -> dict[str, Any]:
    return {
        "seq": int(pos),
        "at": at,
        "run_id": run_id,
        "kind": kind,
        "payload": json.loads(payload),
    }


def _length(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT length FROM chains WHERE stream = %s", (JOURNAL_WIDE,)).fetchone()
    return int(row[0]) if row else 0


def verify(
    doc: dict[str, Any], checkpoint: Checkpoint, public: Ed25519PublicKey | None, digest: Any
) -> Report:
    """Each run's chain against its seal, then the journal-wide chain against
    the checkpoint. `digest`: an event's record digest (runbook.journal.export)."""
    report = Report()
    chains, events, head = doc.get("chains"), doc.get("events"), doc.get("prev")
    if not isinstance(chains, dict) or not isinstance(events, list) or not isinstance(head, str):
        report.problems.append('the export has no "chains", "events" or "prev"')
        return report
    heads: dict[str, tuple[int, str]] = {}
    for run, chain in chains.items():
        run_head = hashing.GENESIS
        for i, event in enumerate(chain if isinstance(chain, list) else []):
            found = digest(event) if isinstance(event, dict) else None
            if found is None or event.get("seq") != i + 1:
                report.problems.append(
                    f"run {run}: event {i + 1} cannot be read or is out of order"
                )
                return report
            run_head = hashing.chain(run_head, found)
        heads[run] = (len(chain), run_head)
    sealed: set[str] = set()
    last = 0
    for i, event in enumerate(events):
        seq = event.get("seq") if isinstance(event, dict) else None
        found = digest(event) if isinstance(event, dict) else None
        if not isinstance(seq, int) or (last and seq != last + 1) or found is None:
            report.problems.append(f"journal-wide event {i + 1} of the export cannot be read")
            return report
        last = seq
        head = hashing.chain(head, found)
        report.count += 1
        change = event.get("payload")
        if isinstance(change, dict) and change.get("table") == SEALS:
            row = change.get("row") or {}
            run = str(row.get("run"))
            if run in heads:
                sealed.add(run)
                if heads[run] != (row.get("length"), row.get("head")):
                    report.problems.append(
                        f"run {run}: its events differ from its seal (journal-wide event {seq})"
                    )
    for run in sorted(set(heads) - sealed):
        report.problems.append(f"run {run}: the export holds no seal of its chain")
    if last != checkpoint.count:
        report.problems.append(
            f"the export ends at journal-wide event {last}, the checkpoint counts "
            f"{checkpoint.count}: export up to a checkpoint (runbook journal export --checkpoint FILE)"
        )
        return report
    compare_checkpoint(report, checkpoint, public, last, {last: head})
    return report
