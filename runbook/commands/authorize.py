"""`runbook authorize`: standing authorizations for runs nobody attends.

A schedule or a queued run cannot type a protected target's name; an operator
authorizes the playbook on the target ahead, and the authorization holds while
the playbook, its includes and its SQL files stay exactly as they were
(runbook.consent).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook import consent, plan, service
from runbook.clock import Clock
from runbook.errors import RunbookError, UsageError


@dataclass(frozen=True)
class Granted:
    id: str
    target: str
    needed: bool  # False: the target is not protected and the playbook no emergency


def grant(
    playbook_path: Path, inventory_path: Path | None, targets: tuple[str, ...], reason: str | None
) -> list[Granted]:
    """Authorize the playbook (as it is now) on each target the names stand for."""
    inventory, playbook, includes = service.load_checked(playbook_path, inventory_path)
    if not targets:
        raise UsageError("name the target(s) to authorize with -t")
    chosen = plan.resolve_targets(playbook, inventory, targets)
    bundle = consent.digest(playbook, includes, inventory.root)
    writes = consent.may_write(playbook, includes)
    at = Clock().iso_now()
    out = []
    with contextlib.closing(service.open_journal(inventory)) as journal:
        for target in chosen:
            auth_id = consent.grant(
                journal, playbook, target.name, bundle, service.operator(), at, reason
            )
            needed = playbook.kind == "emergency" or (target.protected and writes)
            out.append(Granted(auth_id, target.name, needed))
    return out


def revoke(
    playbook_path: Path, inventory_path: Path | None, targets: tuple[str, ...], reason: str | None
) -> list[str]:
    """Revoke the playbook's authorizations on the targets; the ids revoked."""
    inventory, playbook, _ = service.load_checked(playbook_path, inventory_path)
    chosen = plan.resolve_targets(playbook, inventory, targets) if targets else None
    at = Clock().iso_now()
    revoked: list[str] = []
    with contextlib.closing(service.open_journal(inventory)) as journal:
        names = (
            [t.name for t in chosen]
            if chosen is not None
            else sorted({r.target for r in journal.authorizations(playbook.name)})
        )
        for name in names:
            revoked += consent.revoke(journal, playbook.name, name, service.operator(), at, reason)
    return revoked


def listing(inventory_path: Path | None, playbook_path: Path | None) -> list[dict[str, Any]]:
    """Every authorization, newest first, with its state: in force, void
    (the playbook changed since), or revoked."""
    inventory = service.load_inventory(inventory_path, playbook_path or Path.cwd())
    name = None
    current: dict[str, str | None] = {}
    if playbook_path is not None:
        _, playbook, includes = service.load_checked(playbook_path, inventory_path)
        name = playbook.name
        current[str(playbook.path)] = consent.digest(playbook, includes, inventory.root)
    with contextlib.closing(service.open_journal(inventory)) as journal:
        rows = journal.authorizations(name)
    out = []
    for row in rows:
        if row.playbook_path not in current:  # each playbook's digest worked out once
            current[row.playbook_path] = _digest_now(row.playbook_path, inventory_path)
        digest = current[row.playbook_path]
        if row.revoked_at is not None:
            state = "revoked"
        elif digest != row.digest:
            state = "void: changed since"
        else:
            state = "in force"
        out.append({**row.as_dict(), "state": state})
    return out


def _digest_now(path: str, inventory_path: Path | None) -> str | None:
    """The playbook's digest as it is on disk now (None if it cannot be read or is invalid)."""
    try:
        inventory, playbook, includes = service.load_checked(Path(path), inventory_path)
    except RunbookError:  # an invalid or missing playbook: its authorizations are void
        return None
    return consent.digest(playbook, includes, inventory.root)
