"""What a drill runs and what it is measured against.

`runbook drill run` takes a `kind: drill` playbook (its steps are the injects;
`drill.exercise` the procedure; `drill.recovery` the playbook whose gates
passing means recovered) or a procedure itself (no injects, no recovery).
The objectives come from the drill's `objectives:`, else the procedure's, else
the escalation policy's entry for the drill's severity (`acknowledge_within`
for respond, `mitigate_within` for mitigate); per-step targets from either
playbook's `objectives.steps`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from runbook.alerts.escalation import severity_policy
from runbook.errors import UsageError
from runbook.model import Inventory, Objectives, Playbook, SeverityPolicy
from runbook.service import load_checked


@dataclass(frozen=True)
class Target:
    name: str
    seconds: float | None


@dataclass(frozen=True)
class DrillPlan:
    inventory: Inventory
    drill: Playbook | None  # the kind: drill playbook (None: a procedure drilled as it is)
    procedure: Playbook
    recovery: Playbook | None
    severity: str
    respond: Target
    mitigate: Target
    recover: Target
    step_targets: dict[str, float] = field(default_factory=dict)  # a step's id or name → s
    heartbeat: str | None = None
    copy: str = "auto"
    real_notifications: bool = False  # drill.notify: real

    @property
    def playbook(self) -> Playbook:
        """The playbook the drill is of (its record's name and path)."""
        return self.drill or self.procedure


def load(path: Path, inventory_path: Path | None) -> DrillPlan:
    inventory, first, _ = load_checked(path, inventory_path)
    drill: Playbook | None = None
    recovery: Playbook | None = None
    if first.kind == "drill":
        assert first.drill is not None  # checked: kind drill has drill:
        drill = first
        _, procedure, _ = load_checked(first.path.parent / first.drill.exercise, inventory.path)
        if first.drill.recovery:
            _, recovery, _ = load_checked(first.path.parent / first.drill.recovery, inventory.path)
    elif first.kind in ("emergency", "recovery", "change"):
        procedure = first
    else:
        raise UsageError(
            f"{first.name} is kind {first.kind}: a drill rehearses an emergency, recovery or "
            "change procedure (or a kind: drill playbook naming one)"
        )
    severity = _severity(drill, procedure, inventory)
    written = _merged(drill, procedure)
    entry = _policy_entry(inventory, inventory.escalation_of(procedure), severity)
    respond = written.respond or (entry.acknowledge_within if entry else None)
    mitigate = written.mitigate or (entry.mitigate_within if entry else None)
    steps = dict(written.steps)
    known = {s.id for s in procedure.walk() if s.id} | {s.name for s in procedure.walk()}
    unknown = sorted(set(steps) - known)
    if unknown:
        raise UsageError(
            f"objectives.steps names {', '.join(unknown)}: no such step in {procedure.name}"
        )
    return DrillPlan(
        inventory=inventory,
        drill=drill,
        procedure=procedure,
        recovery=recovery,
        severity=severity,
        respond=Target("time to respond", respond),
        mitigate=Target("time to mitigate", mitigate),
        recover=Target("time to recover", written.recover or mitigate),
        step_targets=steps,
        heartbeat=drill.drill.heartbeat if drill and drill.drill else None,
        copy=drill.drill.copy if drill and drill.drill else "auto",
        real_notifications=bool(drill and drill.drill and drill.drill.notify == "real"),
    )


def _policy_entry(inventory: Inventory, name: str | None, severity: str) -> SeverityPolicy | None:
    policy = inventory.policies.get(name or "")
    return severity_policy(policy, severity, inventory.scale) if policy else None


def _merged(drill: Playbook | None, procedure: Playbook) -> Objectives:
    """The drill's objectives over the procedure's, each one on its own."""
    mine = drill.objectives if drill and drill.objectives else Objectives()
    theirs = procedure.objectives or Objectives()
    return Objectives(
        respond=mine.respond or theirs.respond,
        mitigate=mine.mitigate or theirs.mitigate,
        recover=mine.recover or theirs.recover,
        steps={**theirs.steps, **mine.steps},
    )


def _severity(drill: Playbook | None, procedure: Playbook, inventory: Inventory) -> str:
    """The drill's severity, else the first an `escalate` step of the procedure
    opens, else the scale's highest."""
    if drill is not None and drill.drill is not None and drill.drill.severity:
        found = inventory.scale.get(drill.drill.severity)
        if found is None:
            raise UsageError(
                f"drill.severity {drill.drill.severity!r}: the scale is "
                f"{', '.join(inventory.scale.names())}"
            )
        return found.name
    for step in procedure.walk():
        if step.kind == "escalate" and isinstance(step.body, dict):
            written = inventory.scale.get(str(step.body.get("severity", "")))
            if written is not None:
                return written.name
    return inventory.scale.highest.name
