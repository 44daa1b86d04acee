"""`runbook journal keygen | checkpoint | verify`: the journal's tamper evidence."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.clock import Clock
from runbook.errors import UsageError
from runbook.journal.key import KEY_ENV, key_file_for
from runbook.journal.store import StoreConfig, config_for, verify_journal
from runbook.journal.verify import Report
from runbook.service import load_inventory, open_journal


def keygen(inventory: Path | None, out: Path | None) -> tuple[Path, Path, str]:
    """A new signing key: (private key file, public key file, public key PEM)."""
    from runbook.journal import checkpoint

    if out is None:
        out = key_file_for(load_inventory(inventory, Path.cwd()) if inventory else None)
    if out is None:
        raise UsageError(
            f"where should the key go? --out FILE (or name it in ${KEY_ENV} or the inventory's journal.key_file)"
        )
    signer = checkpoint.generate(out)
    pem = checkpoint.public_pem(signer.public)
    public = out.with_name(out.name + ".pub")
    try:
        public.write_text(pem)
    except OSError as exc:
        raise UsageError(f"cannot write {public}: {exc.strerror}") from None
    return out, public, pem


def checkpoint_now(inventory: Path | None, latest: bool) -> dict[str, Any]:
    """The journal's checkpoint now (signed and recorded if there is a key),
    or with `latest` the last one recorded in the journal."""
    from runbook.journal import checkpoint

    journal = open_journal(load_inventory(inventory, Path.cwd()))
    try:
        if latest:
            found = checkpoint.latest(journal)
            if found is None:
                raise UsageError("no checkpoint is recorded in the journal (no key signed one yet)")
            data: dict[str, Any] = found[1]
            return data
        return checkpoint.take(journal, Clock.from_environment().iso_now()).serialize()
    finally:
        journal.close()


def verify(
    inventory: Path | None,
    checkpoint_file: Path | None,
    public_file: Path | None,
    export_file: Path | None = None,
) -> Report:
    """The journal (or an export of it) checked, against a checkpoint kept
    elsewhere if one is given. The public key: --public-key, else the public
    half of the configured key."""
    inv = load_inventory(inventory, Path.cwd())
    key_file = key_file_for(inv)
    cp = public = None
    if checkpoint_file or public_file or key_file:
        from runbook.journal import checkpoint

        cp = checkpoint.read(checkpoint_file) if checkpoint_file else None
        if public_file:
            public = checkpoint.load_public(public_file)
        elif key_file:
            public = checkpoint.load_signer(key_file).public
    if export_file is None:
        return verify_journal(config_for(inv), cp, public)
    from runbook.journal import export as exports

    if cp is None:
        raise UsageError("an export is verified against a checkpoint: --checkpoint FILE")
    return exports.verify(_read_json(export_file), cp, public)


def export(
    inventory: Path | None, run_ids: list[str], checkpoint_file: Path | None
) -> dict[str, Any]:
    """Runs out of the journal, up to the checkpoint's count (or its last event)."""
    from runbook.journal import checkpoint
    from runbook.journal import export as exports

    inv = load_inventory(inventory, Path.cwd())
    upto = checkpoint.read(checkpoint_file).count if checkpoint_file else None
    config = config_for(inv)
    if config.backend == "postgresql":
        from runbook.journal import postgres_export

        return postgres_export.export(config, run_ids, upto)
    assert config.path is not None
    return exports.export(config.path, run_ids, upto)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def upgrade(inventory: Path | None) -> tuple[str, list[int], int]:
    """The PostgreSQL journal's schema brought up to date: (where, migrations applied, version)."""
    from runbook.journal import migrate

    config = config_for(load_inventory(inventory, Path.cwd()))
    if config.backend != "postgresql":
        raise UsageError(
            f"the journal is the SQLite file {config.where}: it is brought up to date whenever"
            " it is opened (journal upgrade is for a PostgreSQL journal)"
        )
    conn = migrate.connect(config)
    try:
        applied = migrate.migrate(conn, config)
        found = config.where, applied, migrate.version(conn, config.schema)
    finally:
        conn.close()
    from runbook.queue import backend

    backend.ensure_schema(config)  # the queue's tables (runbook worker), beside the journal's
    return found


@dataclass
class CopyReport:
    summary: str
    problems: list[str] = field(default_factory=list)


def copy(inventory: Path | None, dsn: str, schema: str) -> CopyReport:
    """This inventory's SQLite journal copied into the PostgreSQL one at `dsn`, then verified."""
    from runbook.journal.events import CHECKPOINTS, prepare
    from runbook.journal.postgres import PostgresStore
    from runbook.journal.sqlite import read_events

    inv = load_inventory(inventory, Path.cwd())
    source = config_for(inv)
    if source.path is None:
        raise UsageError("journal copy reads a SQLite journal; this inventory's is PostgreSQL")
    if not source.path.is_file():
        raise UsageError(f"no journal at {source.path}")
    problems = verify_journal(source).problems
    if problems:
        raise UsageError(
            f"the journal {source.where} does not verify ({problems[0]}…): runbook journal verify"
        )
    target = StoreConfig("postgresql", dsn=dsn, schema=schema, root=inv.root)
    store = PostgresStore(target)
    copied = total = 0
    name = ""  # the source journal's first hash names it (the copy's mark)
    try:
        for batch in read_events(source.path):
            name = name or str(batch[0][5])[:16]
            events = []
            for seq, at, run_id, kind, payload, _ in batch:
                total += 1
                change = json.loads(payload)
                if change.get("table") == CHECKPOINTS:
                    continue  # they sign the SQLite chain, not the copy's
                (prepared,) = prepare([(at, run_id, kind, _decoded(change))])
                events.append((int(seq), prepared))
            copied += store.import_events(name, events)
    finally:
        store.close()
    if total == 0:
        return CopyReport(f"{source.where} holds no events: nothing to copy")
    report = verify_journal(target)
    return CopyReport(
        f"copied {copied} of {total} event(s) from {source.where} into {target.where}"
        f" ({total - copied} already there or checkpoints of the SQLite chain);"
        f" the copy verifies with {len(report.problems)} problem(s)",
        report.problems,
    )


def _decoded(change: dict[str, Any]) -> dict[str, Any]:
    """A change as the recorder made it: JSON columns back to values (the
    backend encodes them again exactly so)."""
    from runbook.journal.events import FOLDED, decode

    if change.get("table") in FOLDED or not isinstance(change.get("row"), dict):
        return change
    return {**change, "row": decode(dict(change["row"]))}
