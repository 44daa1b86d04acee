"""Four eyes: runs that wait for other people's approval before they act.

A playbook's `approval:` (or, unwritten, the default for an emergency on a
protected target: one approver who is not the operator) makes a run ask
before its first action. The request is journaled with a digest of what
would run — the playbook with its includes and SQL files, the variables
(secrets redacted), the targets — and the run waits: at a terminal it waits
in the same process; without one it parks (status awaiting_approval, exit 5)
and `runbook resume RUN_ID` continues it once approved. A change to any of
what the digest covers voids approvals given before.

Who approves is the operating system's user running `runbook approve` (not
a name anyone can type), optionally with an SSH signature checked against
the inventory's allowed_signers. `forbid_self` refuses the operator's own
user; `approvers` limits who may; the quorum counts different people.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import pwd
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook import consent
from runbook.checks.approval import people_of
from runbook.clock import Clock, iso, parse_iso
from runbook.errors import AwaitingApproval, Declined, Refused, UsageError
from runbook.journal.events import Conflict
from runbook.journal.records import ApprovalRecord, VoteRecord
from runbook.journal.store import JournalStore
from runbook.model import Approval, Inventory, Playbook, Target

POLL = 1.0  # seconds between looks at the journal while a run waits
Event = tuple[str, str | None, str, dict[str, Any]]


def os_user() -> str:
    """Who this process runs as, as the operating system knows them."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return getpass.getuser()


def needed(
    playbook: Playbook,
    includes: Mapping[Path, Playbook],
    inventory: Inventory,
    targets: list[Target],
    dry_run: bool,
) -> Approval | None:
    """The approval a run needs: the playbook's own, else the default for an
    emergency that may write to a protected target; None for dry runs."""
    if dry_run:
        return None
    if playbook.approval is not None:
        return playbook.approval
    protected = any(t.protected for t in targets)
    if playbook.kind == "emergency" and protected and consent.may_write(playbook, includes):
        return Approval(implied=True)
    return None


def digest(bundle: str, variables: Mapping[str, Any], targets: list[str]) -> str:
    """What an approval is bound to: the playbook's files, the variables, the targets."""
    text = "\n".join(
        [
            bundle,
            *(f"{k}={variables[k]!r}" for k in sorted(variables)),
            "targets=" + ",".join(sorted(targets)),
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()


def tally(request: ApprovalRecord, votes: list[VoteRecord]) -> tuple[set[str], VoteRecord | None]:
    """The different people who approved, and the first denial (if any)."""
    approved = {v.by for v in votes if v.decision == "approve"}
    denied = next((v for v in votes if v.decision == "deny"), None)
    return approved, denied


@dataclass
class Gate:
    """Asked before a run's first action (Options.approve): returns once approved."""

    journal: JournalStore
    inventory: Inventory
    playbook: Playbook
    target: str
    approval: Approval
    digest: str
    run_id: str
    lineage: tuple[str, ...]  # this run, and the runs it continues (a parked one)
    operator: str
    clock: Clock
    wait: Callable[[ApprovalRecord], None] | None = None  # attended: told, then we poll
    step: str | None = None  # a step-level approval: the step's key
    break_glass: str | None = None  # --break-glass --reason
    page: Callable[[str], None] | None = None  # the escalation policy, for notices
    passed: bool = field(default=False, init=False)

    def __call__(self) -> None:
        if self.passed:
            return
        request = self._current()
        if request is not None and request.status == "approved":
            self.passed = True
            return
        if request is not None and request.status == "denied":
            raise Declined(f"the approval was denied: {request.reason}")
        if self.break_glass is not None:
            self._break_glass(request)
            self.passed = True
            return
        if request is None:
            request = self._ask()
        if self.wait is None:
            what = f"step {self.step}" if self.step else "the run"
            raise AwaitingApproval(
                f"{what} is awaiting approval ({request.quorum} of "
                f"{', '.join(self.approval.approvers) or 'anyone but the operator'}): "
                f"runbook approve {request.run_id}, then runbook resume {self.run_id}"
            )
        self.wait(request)
        self._poll(request)
        self.passed = True

    def _chain(self) -> tuple[str, ...]:
        """This run and every run it continues, back to the one that first asked."""
        chain = list(dict.fromkeys(self.lineage))
        for run_id in chain[1:]:
            if len(chain) > 50:
                break
            earlier = self.journal.run(run_id)
            for found in (earlier.parent_run if earlier else None,):
                if found and found not in chain:
                    chain.append(found)
        return tuple(chain)

    def _current(self) -> ApprovalRecord | None:
        """The newest request of this run's lineage; one for other contents is void."""
        for request in self.journal.approvals(run_ids=self._chain()):
            if request.status == "void" or request.step != self.step:
                continue
            if request.digest != self.digest:
                self._void(request)
                continue
            return request
        return None

    def _void(self, request: ApprovalRecord) -> None:
        with_reason = "what it approved changed (the playbook, its files, variables or targets)"
        self._append(
            "approval.void",
            {"id": request.id, "status": "void", "reason": with_reason},
            expect={"status": request.status},
        )

    def _ask(self) -> ApprovalRecord:
        now = iso(self.clock.now())
        row = {
            "id": uuid.uuid4().hex[:12],
            "run_id": self.run_id,
            "playbook": self.playbook.name,
            "target": self.target,
            "step": self.step,
            "digest": self.digest,
            "quorum": self.approval.quorum,
            "approvers": list(self.approval.approvers),
            "forbid_self": int(self.approval.forbid_self),
            "requested_by": self.operator,
            "requested_os_user": os_user(),
            "requested_at": now,
            "status": "pending",
            "decided_at": None,
            "reason": None,
        }
        self.journal.append([(now, self.run_id, "approval.request", _insert("approvals", row))])
        return ApprovalRecord.from_row(row)

    def _poll(self, request: ApprovalRecord) -> None:
        deadline = time.monotonic() + self.approval.timeout
        while time.monotonic() < deadline:
            found = next((r for r in self.journal.approvals(run_ids=(request.run_id,))
                          if r.id == request.id), None)  # fmt: skip
            if found is not None and found.status == "approved":
                return
            if found is not None and found.status in ("denied", "void"):
                raise Declined(f"the approval was {found.status}: {found.reason}")
            time.sleep(POLL)
        if self.approval.on_timeout == "escalate":
            if self.page is not None:
                self.page(f"{self.playbook.name} on {self.target} awaits approval "
                          f"(runbook approve {request.run_id})")  # fmt: skip
            raise AwaitingApproval(
                f"no approval within {self.approval.timeout:g}s: the approvers were paged; "
                f"runbook approve {request.run_id}, then runbook resume {self.run_id}"
            )
        raise Declined(f"no approval within {self.approval.timeout:g}s (on_timeout: halt)")

    def _break_glass(self, request: ApprovalRecord | None) -> None:
        if not self.approval.break_glass:
            raise Refused(f"{self.playbook.name}: its approval allows no break-glass")
        reason = self.break_glass.strip() if self.break_glass else ""
        if self.approval.reason_required and not reason:
            raise Refused("--break-glass needs --reason: why the approval was not awaited")
        request = request or self._ask()
        self._append(
            "approval.break-glass",
            {"id": request.id, "status": "broken", "decided_at": iso(self.clock.now()),
             "reason": f"break-glass by {os_user()}: {reason}"},
            expect={"status": request.status},
        )  # fmt: skip
        if self.page is not None:
            self.page(
                f"break-glass: {self.playbook.name} on {self.target} ran without its approval "
                f"(run {self.run_id}, by {os_user()}): {reason}; review it"
            )

    def _append(self, kind: str, row: dict[str, Any], expect: dict[str, Any]) -> None:
        change = {"table": "approvals", "op": "update", "row": row, "expect": expect}
        # Decided meanwhile by someone else (Conflict): the next look reads it.
        with contextlib.suppress(Conflict):
            self.journal.append([(iso(self.clock.now()), self.run_id, kind, change)])


def _insert(table: str, row: dict[str, Any]) -> dict[str, Any]:
    return {"table": table, "op": "insert", "row": row}


def vote(
    journal: JournalStore,
    inventory: Inventory,
    run_id: str,
    decision: str,
    comment: str | None,
    clock: Clock,
    signed: tuple[str, str] | None = None,
) -> tuple[ApprovalRecord, str]:
    """Approve or deny the pending request of `run_id` as this OS user; the
    request as it is afterwards, and what happened in words."""
    pending = journal.approvals(run_ids=(run_id,), status="pending")
    if not pending:
        others = journal.approvals(run_ids=(run_id,))
        said = f" (its last request is {others[0].status})" if others else ""
        raise UsageError(f"run {run_id} has no approval waiting{said}")
    request = pending[0]
    who = os_user()
    if request.forbid_self and who == request.requested_os_user:
        raise Refused(f"{who} started run {run_id}: someone else approves it (four eyes)")
    allowed = people_of(tuple(request.approvers or ()), inventory)
    if allowed and who not in allowed:
        raise Refused(f"{who} may not approve {request.playbook}: its approvers are "
                      f"{', '.join(sorted(allowed))}")  # fmt: skip
    votes = journal.votes(request.id)
    if any(v.by == who for v in votes):
        raise UsageError(f"{who} has already voted on run {run_id}'s approval")
    now = iso(clock.now())
    row = {
        "id": uuid.uuid4().hex[:12], "approval_id": request.id, "by": who, "at": now,
        "decision": decision, "comment": comment,
        "principal": signed[0] if signed else None, "signature": signed[1] if signed else None,
    }  # fmt: skip
    events: list[Event] = [(now, request.run_id, f"approval.{decision}",
                            _insert("approval_votes", row))]  # fmt: skip
    approved, _ = tally(request, [*votes, VoteRecord.from_row(row)])
    status = None
    if decision == "deny":
        status, reason = "denied", f"denied by {who}: {comment}"
    elif len(approved) >= request.quorum:
        status, reason = "approved", f"approved by {', '.join(sorted(approved))}"
    if status is not None:
        update = {"id": request.id, "status": status, "decided_at": now, "reason": reason}
        events.append((now, request.run_id, f"approval.{status}",
                       {"table": "approvals", "op": "update", "row": update,
                        "expect": {"status": "pending"}}))  # fmt: skip
    try:
        journal.append(events)
    except Conflict:
        raise UsageError(f"run {run_id}'s approval was decided meanwhile") from None
    after = next(r for r in journal.approvals(run_ids=(run_id,)) if r.id == request.id)
    if status is None:
        words = f"approved by {who}: {len(approved)} of {request.quorum}, waiting for more"
    else:
        words = f"{status} ({reason})"
    return after, words


def age(request: ApprovalRecord, clock: Clock) -> float:
    return (clock.now() - parse_iso(request.requested_at)).total_seconds()
