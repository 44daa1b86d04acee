"""Who lets a run start: protected targets, emergencies, standing authorizations.

A playbook that may write, run against a target marked `protected: true`,
starts only when a person types the target's name (the group's, when the
target came in a group), or, with no terminal, passes `--yes --confirm-target
NAME`. A `kind: emergency` playbook shows its plan (what writes, which
rollbacks exist) and asks first, under the same rule. A run nobody attends
(a schedule, a queued run) cannot ask anyone: it needs a standing
authorization (`runbook authorize`), bound to the sha256 of the playbook with
its includes and SQL files, void as soon as any of them changes.

Dry runs (`--check`, `--rehearse`) change nothing and need no one's consent.
Whatever let a run start is recorded on the run (`consent`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook import plan
from runbook.actions import writes
from runbook.errors import Refused, UsageError
from runbook.journal.records import AuthorizationRecord
from runbook.journal.store import JournalStore
from runbook.load import sqlfiles
from runbook.model import Inventory, Playbook, Target

WRITING_KINDS = ("change", "emergency", "recovery")

# The CLI's question before a run: the lines to show, the names to type back
# (none: a yes/no); True to go on.
Ask = Callable[[Sequence[str], Sequence[str]], bool]


@dataclass(frozen=True)
class Request:
    """What the person (or the schedule) brings: the flags of the command line."""

    yes: bool = False
    confirm_targets: tuple[str, ...] = ()
    attended: bool = True  # False: a schedule or a queued run; nobody can be asked
    operator: str = ""


@dataclass
class Needed:
    """What this run needs before it may start."""

    names: list[str] = field(default_factory=list)  # to be typed back (protected)
    protected: list[Target] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)  # all of the run's
    emergency: bool = False
    lines: list[str] = field(default_factory=list)  # the plan a person is shown

    def __bool__(self) -> bool:
        return bool(self.names or self.emergency)


def may_write(playbook: Playbook, includes: Mapping[Path, Playbook]) -> bool:
    """Whether a run of `playbook` may change anything: its kind says so, or a step does."""
    if playbook.kind in WRITING_KINDS:
        return True
    for pb in (playbook, *includes.values()):
        for step in pb.walk():
            if writes(step):
                return True
    return False


def digest(playbook: Playbook, includes: Mapping[Path, Playbook], root: Path) -> str:
    """sha256 over the playbook, its includes and the SQL files they run: what a
    standing authorization is bound to."""
    h = hashlib.sha256()
    h.update(f"playbook\0{playbook.sha256}\0".encode())
    books = [playbook]
    for path in plan.include_paths(playbook, includes):
        included = includes.get(path)
        h.update(f"include\0{path}\0{included.sha256 if included else 'missing'}\0".encode())
        if included is not None:
            books.append(included)
    names = sorted({str(s.body) for pb in books for s in pb.walk() if s.kind == "sql_file"})
    for name in names:
        found = sqlfiles.read(root, name)
        h.update(f"sql_file\0{name}\0{found.digest or 'unreadable'}\0".encode())
    return h.hexdigest()


def needed(
    playbook: Playbook,
    includes: Mapping[Path, Playbook],
    inventory: Inventory,
    chosen: tuple[str, ...],
    targets: Sequence[Target],
    dry_run: bool,
) -> Needed:
    """What must be confirmed before this run starts (nothing, for a dry run)."""
    need = Needed(targets=list(targets))
    if dry_run:
        return need
    writes = may_write(playbook, includes)
    need.protected = [t for t in targets if t.protected] if writes else []
    for name, members in plan.target_sources(playbook, inventory, chosen):
        if any(m in need.protected for m in members) and name not in need.names:
            need.names.append(name)
    need.emergency = playbook.kind == "emergency"
    if need:
        need.lines = plan_lines(playbook, includes, targets)
    return need


def plan_lines(
    playbook: Playbook, includes: Mapping[Path, Playbook], targets: Sequence[Target]
) -> list[str]:
    """What a person is shown before saying yes: targets, writing steps, rollbacks."""
    shown = ", ".join(f"{t.name} (protected)" if t.protected else t.name for t in targets)
    lines = [f"{playbook.kind} playbook {playbook.name!r} on {shown}"]
    the_plan = plan.build(playbook, targets[0], includes, plan.Selection())
    writing = [ps for ps in the_plan.walk() if writes(ps.step)]
    if not writing:
        lines.append("  no step writes")
    for ps in writing:
        undo = "rollback available" if ps.rollback else "no rollback"
        lines.append(f"  writes: step {ps.number} {ps.name} ({ps.kind}; {undo})")
    with_undo = sum(1 for ps in writing if ps.rollback)
    lines.append(f"  rollbacks: {with_undo} of {len(writing)} writing step(s) can be undone")
    return lines


def obtain(
    need: Needed,
    request: Request,
    ask: Ask | None,
    journal: JournalStore,
    playbook: Playbook,
    bundle_digest: Callable[[], str],
) -> dict[str, Any] | None:
    """Consent for this run, as recorded on it; raises Refused (exit 4) without it."""
    if not need:
        return None
    names = need.names
    what = "protected target(s) " + ", ".join(names) if names else "an emergency playbook"
    if not request.attended:
        return _authorized(need, journal, playbook, bundle_digest(), what)
    named = [n for n in names if n in request.confirm_targets]
    wrong = sorted(set(request.confirm_targets) - set(names))
    if wrong:
        expected = ", ".join(names) or "none (no protected target is written to)"
        raise UsageError(
            f"--confirm-target {', '.join(wrong)}: this run's protected names are {expected}"
        )
    if request.yes and len(named) == len(names):
        how = "--confirm-target" if names else "--yes"
        return {"how": how, "by": request.operator, "names": names}
    if ask is None:
        flags = "--yes" + "".join(f" --confirm-target {n}" for n in names)
        raise Refused(
            f"{playbook.name} writes to {what}: it needs a person to confirm; "
            f"run it from a terminal, or pass {flags}"
        )
    if not ask(need.lines, names):
        raise Refused(f"{playbook.name}: not confirmed; nothing ran")
    return {"how": "typed" if names else "asked", "by": request.operator, "names": names}


def _authorized(
    need: Needed, journal: JournalStore, playbook: Playbook, current: str, what: str
) -> dict[str, Any]:
    """A run nobody attends: every target that needs consent has a standing
    authorization for this very playbook (same sha256)."""
    granted: list[dict[str, Any]] = []
    for target in need.targets if need.emergency else need.protected:
        found = standing(journal, playbook.name, target.name)
        if found is None:
            raise Refused(
                f"{playbook.name} writes to {what} and nobody attends this run: it needs a "
                f"standing authorization (runbook authorize {playbook.path} -t {target.name})"
            )
        if found.digest != current:
            raise Refused(
                f"the authorization of {playbook.name} on {found.target} (by {found.granted_by} "
                f"at {found.granted_at}) is void: the playbook, an include or an SQL file "
                "changed since; authorize it again"
            )
        granted.append({"id": found.id, "by": found.granted_by, "at": found.granted_at})
    return {"how": "authorization", "authorizations": granted}


def standing(journal: JournalStore, playbook: str, target: str) -> AuthorizationRecord | None:
    """The newest authorization of `playbook` on `target` still in force."""
    for row in journal.authorizations(playbook, target):
        if row.revoked_at is None:
            return row
    return None


def grant(
    journal: JournalStore,
    playbook: Playbook,
    target: str,
    bundle: str,
    operator: str,
    at: str,
    reason: str | None,
) -> str:
    """Record a standing authorization; its id."""
    auth_id = uuid.uuid4().hex[:12]
    row = {
        "id": auth_id,
        "playbook": playbook.name,
        "playbook_path": str(playbook.path),
        "digest": bundle,
        "target": target,
        "granted_by": operator,
        "granted_at": at,
        "reason": reason,
    }
    journal.append(
        [(at, None, "authorization.grant", {"table": "authorizations", "op": "insert", "row": row})]
    )
    return auth_id


def revoke(
    journal: JournalStore, playbook: str, target: str, operator: str, at: str, reason: str | None
) -> list[str]:
    """Revoke every authorization of `playbook` on `target` in force; their ids."""
    revoked = []
    for row in journal.authorizations(playbook, target):
        if row.revoked_at is not None:
            continue
        change = {
            "table": "authorizations",
            "op": "update",
            "row": {
                "id": row.id,
                "revoked_by": operator,
                "revoked_at": at,
                "revoke_reason": reason,
            },
            "expect": {"revoked_at": None},
        }
        journal.append([(at, None, "authorization.revoke", change)])
        revoked.append(row.id)
    return revoked


def describe(given: Mapping[str, Any]) -> str:
    """One line on who let a run start, for `runbook show`."""
    how = given.get("how")
    if how == "authorization":
        auths = ", ".join(
            f"{a['id']} by {a['by']} at {a['at']}" for a in given.get("authorizations", [])
        )
        return f"started on standing authorization {auths}"
    names = ", ".join(given.get("names") or [])
    what = f"{names} confirmed" if names else "confirmed"
    by = {
        "typed": "typed by",
        "asked": "answered yes by",
        "--confirm-target": "--yes --confirm-target by",
    }
    return f"{what} ({by.get(str(how), str(how))} {given.get('by')})"
