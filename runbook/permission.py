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
from runbook.load.loader import approval_of
from runbook.model import Approval, Target
from runbook.plan import PlannedStep

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
    dry_run = spec.dry_run
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
    """A run's approval requirements (its playbook's, and whether steps have
    their own), and who is told while it waits."""

    approval: Approval | None
    steps: bool
    wait: Callable[[ApprovalRecord], None] | None


def approval_needed(spec: RunSpec, prepared: Prepared) -> tuple[Approval | None, bool] | None:
    """The playbook's approval and whether any step has one; None: nothing to approve."""
    dry_run = spec.dry_run
    found = approval.needed(
        prepared.playbook, prepared.includes, prepared.inventory, prepared.targets, dry_run
    )
    steps = not dry_run and any(
        "approval" in step.options
        for pb in (prepared.playbook, *prepared.includes.values())
        for step in pb.walk()
    )
    if found is None and not steps:
        return None
    if len(prepared.targets) > 1:
        raise UsageError(
            f"{prepared.playbook.name} needs approvals: it runs on one target at a time "
            f"(-t one of {', '.join(t.name for t in prepared.targets)})"
        )
    return found, steps


class Approver:
    """Options.approve of one run: the playbook's gate before the first action,
    and each step's own, bound to what the step renders, when it is reached."""

    def __init__(self, make: Callable[[Approval, str, str | None], approval.Gate],
                 bundle: str, shown: dict[str, Any], target: str, approving: Approving) -> None:  # fmt: skip
        self.make, self.bundle, self.shown, self.target = make, bundle, shown, target
        self.first = (
            make(approving.approval, approval.digest(bundle, shown, [target]), None)
            if approving.approval is not None
            else None
        )
        self.passed: set[str] = set()

    def __call__(self, ps: PlannedStep, render: Callable[[], str]) -> None:
        if self.first is not None:
            self.first()
        raw = ps.step.options.get("approval")
        key = ps.step.key
        if not isinstance(raw, dict) or key in self.passed:
            return
        wanted = approval_of(raw)
        assert wanted is not None
        bound = {**self.shown, "step": key, "statement": render()}
        self.make(wanted, approval.digest(self.bundle, bound, [self.target]), key)()
        self.passed.add(key)


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
) -> Approver:
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

    def make(wanted: Approval, digest: str, step: str | None) -> approval.Gate:
        return approval.Gate(
            journal=journal,
            inventory=prepared.inventory,
            playbook=playbook,
            target=target.name,
            approval=wanted,
            digest=digest,
            run_id=run_id,
            lineage=lineage,
            operator=who,
            clock=clock,
            wait=approving.wait,
            break_glass=spec.break_glass,
            page=page,
            step=step,
        )

    return Approver(make, bundle, shown, target.name, approving)
