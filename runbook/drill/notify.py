"""A drill's notifications: labelled [DRILL], sent to the policy's drill route
only, or not at all.

The incidents a drill opens are real journal records (the scorecard counts
them), keyed under the drill (`drill:ID:KEY`) and recorded against the policy
as `drill:POLICY`, a name no inventory has: a later `escalations tick` finds
no timeline for them and pages no one. Their one stop is the drill route
(`drill_route:` of the policy) at once; without a route they are journaled
and sent nowhere. `notify` steps go to the route's channels the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runbook.alerts.escalation import Stop, timeline
from runbook.alerts.incidents import Store
from runbook.alerts.notifier import Escalator
from runbook.clock import Clock
from runbook.journal.records import IncidentRecord
from runbook.model import Inventory, Level, Playbook, Recipient, SeverityPolicy, Target
from runbook.redact import Redactor

if TYPE_CHECKING:
    from runbook.fleet.group import NotifierJournal

LABEL = "[DRILL]"
PREFIX = "drill:"


class DrillStore(Store):
    """Incidents recorded against drill:POLICY, whose timeline is the drill route,
    once (`real`: the policy's first level, once)."""

    real: bool = False

    def raise_(
        self,
        key: str,
        severity: str,
        message: str,
        *,
        policy: str,
        gate: str,
        playbook: str,
        target: str,
        run_id: str | None,
    ) -> tuple[IncidentRecord, bool]:
        return super().raise_(
            key,
            severity,
            message,
            policy=policy if policy.startswith(PREFIX) else f"{PREFIX}{policy}",
            gate=gate,
            playbook=playbook,
            target=target,
            run_id=run_id,
        )

    def _timeline(self, policy_name: str | None, severity: str) -> list[Stop]:
        name = (policy_name or "").removeprefix(PREFIX)
        policy = self.inventory.policies.get(name)
        if self.real:
            return super()._timeline(name, severity)[:1]
        if policy is None or not policy.drill_route:
            return []
        route = tuple(Recipient(channel) for channel in policy.drill_route)
        return timeline(SeverityPolicy(levels=(Level(0.0, route, "drill route"),)))


class DrillEscalator(Escalator):
    def __init__(self, store: Store, drill_id: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(store, *args, **kwargs)
        self.drill_id = drill_id
        self.route = self._route()

    def _route(self) -> tuple[str, ...] | None:
        """The channels a notify step goes to (None: its own, `real`)."""
        if isinstance(self.store, DrillStore) and self.store.real:
            return None
        policy = self.store.inventory.policies.get(self.policy or "")
        return policy.drill_route if policy is not None else ()

    def escalate(
        self,
        key: str,
        severity: str,
        message: str,
        *,
        policy: str | None,
        gate: str,
        explicit: bool = True,
    ) -> dict[str, Any]:
        return super().escalate(
            f"{PREFIX}{self.drill_id}:{key}",
            severity,
            f"{LABEL} {message}",
            policy=policy,
            gate=gate,
            explicit=explicit,
        )

    def notify(
        self,
        channel_names: list[str],
        message: str,
        *,
        subject: str | None,
        severity: str | None,
        to: list[str],
    ) -> list[dict[str, Any]]:
        if self.route is None:
            return super().notify(
                channel_names,
                f"{LABEL} {message}",
                subject=f"{LABEL} {subject}" if subject else None,
                severity=severity,
                to=to,
            )
        if not self.route:
            self.events.append({"notify": f"{LABEL} {subject or message[:60]}", "deliveries": []})
            return [{"channel": name, "status": "suppressed (drill)"} for name in channel_names]
        return super().notify(
            list(self.route),
            f"{LABEL} {message}",
            subject=f"{LABEL} {subject}" if subject else None,
            severity=severity,
            to=to,
        )


def notifier_for(drill_id: str, real: bool = False) -> Any:
    """The run service's `notifier_for` for a drill's runs (`real`: drill.notify: real)."""

    def make(
        inventory: Inventory,
        alerts: NotifierJournal,
        playbook: Playbook,
        target: Target,
        run_id: str,
        redactor: Redactor,
    ) -> DrillEscalator:
        store = DrillStore(alerts(), inventory, Clock.from_environment(), redactor)
        store.real = real
        policy = inventory.escalation_of(playbook)
        return DrillEscalator(
            store,
            drill_id,
            playbook.name,
            target.name,
            run_id,
            policy,
            playbook.escalation_threshold,
            attend=alerts.attend,
        )

    return make
