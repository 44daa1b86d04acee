"""Who lets a run start, for the run service: consent (runbook.consent) and
four eyes (runbook.approval), from a RunSpec and what it prepared."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runbook import approval, consent
from runbook.clock import Clock
from runbook.context import Notifier
from runbook.errors import UsageError
from runbook.journal.records import ApprovalRecord
from runbook.journal.store import JournalStore
from runbook.model import Approval, Target

if TYPE_CHECKING:
    from runbook.service import Prepared, RunSpec


def consent_for(
    spec: RunSpec,
    prepared: Prepared,
    journal: JournalStore,
    ask: consent.Ask | None,
    who: str,
) -> dict[str, Any] | None:
    """Consent for a run that writes to a protected target, or an emergency
    (runbook.consent); raises Refused (exit 4) before anything connects."""
    playbook = prepared.playbook
    dry_run = spec.check or spec.rehearse or spec.mode == "rollback-check"
    need = consent.needed(
        playbook, prepared.includes, prepared.inventory, spec.targets, prepared.targets, dry_run
    )
    request = consent.Request(spec.yes, spec.confirm_targets, spec.attended, who)
    return consent.obtain(
        need,
        request,
        ask,
        journal,
        playbook,
        lambda: consent.digest(playbook, prepared.includes, prepared.inventory.root),
    )


@dataclass(frozen=True)
class Approving:
    """A run's approval requirement, and who is told while it waits."""

    approval: Approval
    wait: Callable[[ApprovalRecord], None] | None


def approval_needed(spec: RunSpec, prepared: Prepared) -> Approval | None:
    dry_run = spec.check or spec.rehearse or spec.mode == "rollback-check"
    found = approval.needed(
        prepared.playbook, prepared.includes, prepared.inventory, prepared.targets, dry_run
    )
    if found is not None and len(prepared.targets) > 1:
        raise UsageError(
            f"{prepared.playbook.name} needs an approval: it runs on one target at a time "
            f"(-t one of {', '.join(t.name for t in prepared.targets)})"
        )
    return found


def gate(
    spec: RunSpec,
    prepared: Prepared,
    target: Target,
    journal: JournalStore,
    run_id: str,
    who: str,
    clock: Clock,
    approving: Approving,
    notifier: Notifier | None,
) -> approval.Gate:
    playbook = prepared.playbook
    shown = {k: ("***" if k in playbook.secrets else v) for k, v in prepared.extra.items()}
    bundle = consent.digest(playbook, prepared.includes, prepared.inventory.root)
    high = prepared.inventory.scale.get("high") or prepared.inventory.scale.highest

    def page(message: str) -> None:
        if notifier is not None:
            key = f"approval:{playbook.name}:{target.name}"
            notifier.escalate(key, high.name, message, policy=None, gate="approval",
                              explicit=False)  # fmt: skip

    lineage = tuple(r for r in (run_id, spec.continues, spec.parent_run) if r)
    return approval.Gate(
        journal=journal,
        inventory=prepared.inventory,
        playbook=playbook,
        target=target.name,
        approval=approving.approval,
        digest=approval.digest(bundle, shown, [target.name]),
        run_id=run_id,
        lineage=lineage,
        operator=who,
        clock=clock,
        wait=approving.wait,
        break_glass=spec.break_glass,
        page=page,
    )
