"""`runbook journal keygen | checkpoint | verify`: the journal's tamper evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runbook.clock import Clock
from runbook.errors import UsageError
from runbook.journal.key import KEY_ENV, key_file_for
from runbook.journal.store import config_for, verify_journal
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
    if config.path is None:
        raise UsageError(
            "runbook journal export reads a SQLite journal; a PostgreSQL journal is verified"
            " in place (runbook journal verify)"
        )
    return exports.export(config.path, run_ids, upto)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
