"""The notifier a run gets: incidents and deliveries on the run's journal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runbook.alerts.incidents import Store
from runbook.alerts.notifier import Escalator
from runbook.clock import Clock
from runbook.model import Inventory, Playbook, Target
from runbook.redact import Redactor

if TYPE_CHECKING:
    from runbook.fleet.group import NotifierJournal


def notifier_for(
    inventory: Inventory,
    alerts: NotifierJournal,
    playbook: Playbook,
    target: Target,
    run_id: str,
    redactor: Redactor,
) -> Escalator:
    store = Store(alerts(), inventory, Clock.from_environment(), redactor)
    policy = inventory.escalation_of(playbook)
    return Escalator(
        store, playbook.name, target.name, run_id, policy, playbook.escalation_threshold,
        alerts.take_up_abandoned(), alerts.attend,
        lambda keys: alerts.open_incidents(playbook.name, keys),
    )  # fmt: skip
