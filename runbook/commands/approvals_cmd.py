"""`runbook approvals`, `runbook approve RUN_ID`, `runbook deny RUN_ID`."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

from runbook import approval
from runbook.clock import Clock
from runbook.errors import Refused, UsageError
from runbook.journal.records import ApprovalRecord
from runbook.model import Inventory
from runbook.service import load_inventory, open_journal

NAMESPACE = "runbook-approval"


def listing(inventory: Path | None, everything: bool) -> list[dict[str, Any]]:
    """Pending requests (all of them with `everything`), newest first, with their votes."""
    journal = open_journal(load_inventory(inventory, Path.cwd()))
    try:
        found = journal.approvals(status=None if everything else "pending", limit=200)
        rows = []
        for request in found:
            votes = journal.votes(request.id)
            rows.append({**request.as_dict(), "votes": [v.as_dict() for v in votes]})
    finally:
        journal.close()
    return rows


def render(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for r in rows:
        yes = [v["by"] for v in r["votes"] if v["decision"] == "approve"]
        approvers = ", ".join(r["approvers"] or []) or "anyone but the operator"
        out.append(
            f"{r['run_id']}  {r['status']:<9} {r['playbook']} on {r['target']}  "
            f"requested by {r['requested_by']} ({r['requested_os_user']}) at {r['requested_at']}; "
            f"{len(yes)} of {r['quorum']} from {approvers}"
            + (f"; {r['reason']}" if r["reason"] else "")
        )
    return out


def decide(
    inventory_path: Path | None,
    run_id: str,
    decision: str,
    comment: str | None,
    key: Path | None = None,
) -> str:
    """Approve (optionally signed with an SSH key) or deny, as this OS user."""
    if decision == "deny" and not (comment or "").strip():
        raise UsageError("--reason: say why it is denied (journaled)")
    inventory = load_inventory(inventory_path, Path.cwd())
    journal = open_journal(inventory)
    try:
        signed = None
        if key is not None:
            pending = journal.approvals(run_ids=(run_id,), status="pending")
            if not pending:
                raise UsageError(f"run {run_id} has no approval waiting")
            signed = sign(inventory, pending[0], key)
        _, words = approval.vote(
            journal, inventory, run_id, decision, comment, Clock.from_environment(), signed
        )
    finally:
        journal.close()
    return f"run {run_id}: {words}"


def message(request: ApprovalRecord) -> bytes:
    """What a signature covers: the request and the digest it was bound to."""
    return f"runbook approval {request.id} run {request.run_id} digest {request.digest}\n".encode()


def sign(inventory: Inventory, request: ApprovalRecord, key: Path) -> tuple[str, str]:
    """Sign the request with an SSH key, verify it against the inventory's
    allowed_signers: (the verified principal, the signature)."""
    signers = inventory.allowed_signers
    if signers is None or not signers.is_file():
        raise UsageError("--sign needs approvers.allowed_signers in the inventory (a file)")
    made = subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-q", "-f", str(key), "-n", NAMESPACE],
        input=message(request),
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        raise UsageError(f"cannot sign with {key}: {made.stderr.decode(errors='replace').strip()}")
    signature = made.stdout.decode()
    return verify(signers, request, signature), signature


def verify(signers: Path, request: ApprovalRecord, signature: str) -> str:
    """The principal of allowed_signers whose key made `signature`; Refused otherwise."""
    with tempfile.NamedTemporaryFile("w", suffix=".sig") as sig:
        sig.write(signature)
        sig.flush()
        found = subprocess.run(
            ["ssh-keygen", "-Y", "find-principals", "-s", sig.name, "-f", str(signers)],
            capture_output=True,
            check=False,
        )
        principal = found.stdout.decode().strip().splitlines()[0] if found.returncode == 0 else ""
        if not principal:
            raise Refused("the signature's key is not in approvers.allowed_signers")
        checked = subprocess.run(
            ["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", principal,
             "-n", NAMESPACE, "-s", sig.name],
            input=message(request),
            capture_output=True,
            check=False,
        )  # fmt: skip
    if checked.returncode != 0:
        raise Refused(f"the signature does not verify: {checked.stderr.decode().strip()}")
    return principal
