"""The notifier a run gets: incidents and deliveries on the run's journal."""

from __future__ import annotations

from runbook.alerts.incidents import Store
from runbook.alerts.notifier import Escalator
from runbook.clock import Clock
from runbook.journal.store import JournalStore
from runbook.model import Inventory, Playbook, Target
from runbook.redact import Redactor


def notifier_for(
    inventory: Inventory,
    journal: JournalStore,
    playbook: Playbook,
    target: Target,
    run_id: str,
    redactor: Redactor,
) -> Escalator:
    # `journal` is the run's notifier connection (runbook.service.NotifierJournal).
    store = Store(journal, inventory, Clock.from_environment(), redactor)
    policy = inventory.escalation_of(playbook)
    return Escalator(
        store, playbook.name, target.name, run_id, policy, playbook.escalation_threshold
    )
