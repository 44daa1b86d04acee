"""`runbook journal export --run ID | --drill ID | --since 30d` and
`runbook journal verify --evidence FILE`: evidence an auditor checks offline.

The evidence file is JSON lines: first a header with a checkpoint signed now
(so a key is needed), the public key that checks it and what was selected;
then the journal's events from the first selected one up to the checkpoint,
one per line: the selected runs' events (and a drill's own records) whole,
every other one only by its digest. Verifying recomputes the chain from the
header's `prev` to the checkpoint's head and checks the signature: the
records are exactly what was journaled, in their places, and nothing else of
the journal is shown.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runbook.clock import Clock
from runbook.commands.history import since_instant
from runbook.errors import UsageError
from runbook.journal.store import JournalStore, config_for
from runbook.journal.verify import Report
from runbook.service import load_inventory, open_journal

FORMAT = "runbook-evidence/1"


def export(
    inventory: Path | None, runs: tuple[str, ...], drill: str | None, since: str | None
) -> list[str]:
    """The evidence file's lines."""
    from runbook.journal import checkpoint, postgres_export
    from runbook.journal import export as exports

    if not (runs or drill or since):
        raise UsageError("say what to export: --run ID, --drill ID or --since 30d")
    inv = load_inventory(inventory, Path.cwd())
    journal = open_journal(inv)
    try:
        if journal.signer is None:
            raise UsageError(
                "evidence carries a signed checkpoint: configure the journal's key "
                "(journal.key_file, or runbook journal keygen)"
            )
        wanted, drill_id = _selected(journal, runs, drill, since)
        cp = checkpoint.take(journal, Clock.from_environment().iso_now())
        public = checkpoint.public_pem(journal.signer.public)
    finally:
        journal.close()
    keep = _drill_records(drill_id) if drill_id else None
    config = config_for(inv)
    if config.backend == "postgresql":
        doc = postgres_export.export(config, wanted, cp.count, keep)
    else:
        assert config.path is not None
        doc = exports.export(config.path, wanted, cp.count, keep)
    events = doc.pop("events")
    header = {
        "format": FORMAT,
        "export": doc,
        "checkpoint": cp.serialize(),
        "public_key": public,
        "selected": {"runs": wanted, "drill": drill_id, "since": since},
    }
    return [json.dumps(header, sort_keys=True)] + [json.dumps(e, sort_keys=True) for e in events]


def _selected(
    journal: JournalStore, runs: tuple[str, ...], drill: str | None, since: str | None
) -> tuple[list[str], str | None]:
    wanted = list(runs)
    drill_id = None
    if drill:
        found = journal.drill(drill)
        if found is None:
            raise UsageError(f"no drill {drill!r} in the journal (or the prefix is ambiguous)")
        drill_id = found.id
        wanted += [r["run_id"] for r in found.run_ids or []]
    if since:
        after = since_instant(since, Clock.from_environment())
        ended = [r for r in journal.runs(since=after, limit=100_000) if r.ended_at]
        wanted += [r.id for r in ended]
    if not wanted and drill_id is None:
        raise UsageError("nothing matches: no ended run in that selection")
    return sorted(set(wanted)), drill_id


def _drill_records(drill_id: str) -> Any:
    def keep(change: dict[str, Any]) -> bool:
        row = change.get("row") or {}
        return (change.get("table") == "drills" and row.get("id") == drill_id) or (
            change.get("table") == "drill_notes" and row.get("drill_id") == drill_id
        )

    return keep


def verify(path: Path, public_file: Path | None) -> Report:
    """An evidence file checked on its own (and against a public key kept
    elsewhere, if given: the one in the file proves only that the file is whole)."""
    from runbook.journal import checkpoint
    from runbook.journal import export as exports

    lines = _lines(path)
    try:
        header = json.loads(lines[0])
        events = [json.loads(line) for line in lines[1:]]
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{path}: not evidence (a line is not JSON: {exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise UsageError(f'{path}: not runbook evidence (no "format": {FORMAT!r} on line 1)')
    cp = checkpoint.parse(header.get("checkpoint"), f"{path}: its checkpoint")
    if public_file is not None:
        public = checkpoint.load_public(public_file)
    else:
        public = _public(header.get("public_key"), path)
    doc = {**(header.get("export") or {}), "events": events}
    report = exports.verify(doc, cp, public)
    if public_file is None:
        report.notes.append(
            "checked with the public key the file carries: compare its key id "
            f"({cp.key_id}) with the one you keep, or pass --public-key"
        )
    return report


def _lines(path: Path) -> list[str]:
    try:
        lines = [x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if not lines:
        raise UsageError(f"{path} is empty")
    return lines


def _public(pem: Any, path: Path) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(str(pem).encode())
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{path}: its public key cannot be read: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"{path}: its public key is not an Ed25519 key")
    return key
