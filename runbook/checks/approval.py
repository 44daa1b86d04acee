"""A playbook's `approval:` against the inventory: a quorum the approvers can reach."""

from __future__ import annotations

from collections.abc import Iterator

from runbook.checks.common import Context, doc_at
from runbook.errors import Problem
from runbook.model import Inventory, Playbook


def people_of(names: tuple[str, ...], inventory: Inventory | None) -> set[str]:
    """The user names that `approvers` names (groups of people expanded)."""
    groups = inventory.people if inventory is not None else {}
    out: set[str] = set()
    for name in names:
        out.update(groups.get(name, (name,)))
    return out


def check_approval(pb: Playbook, ctx: Context) -> Iterator[Problem]:
    approval, doc = pb.approval, pb.doc
    if approval is None or doc is None or not approval.approvers:
        return
    people = people_of(approval.approvers, ctx.inventory)
    if approval.quorum > len(people):
        yield doc_at(
            doc,
            ("approval", "quorum"),
            f"a quorum of {approval.quorum} cannot be reached: the approvers are "
            f"{len(people)} ({', '.join(sorted(people))})",
            "approval-quorum",
        )
