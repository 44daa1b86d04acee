"""The scheduler's pages: a routine that did not run, or ran too long.

Incidents go through the playbook's escalation policy like a failed gate's
(runbook.alerts), keyed by the pair, so a routine missed again counts on the
open incident instead of paging anew; they resolve when the routine next runs
to its end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from runbook.alerts.incidents import Store
from runbook.alerts.notifier import Escalator
from runbook.clock import Clock
from runbook.errors import RunbookError
from runbook.journal.store import JournalStore
from runbook.model import Inventory

if TYPE_CHECKING:
    from runbook.schedule.entries import Entry


def missed_key(entry: Entry) -> str:
    return f"schedule:{entry.path}:{entry.target}:did-not-run"


def overtime_key(entry: Entry) -> str:
    return f"schedule:{entry.path}:{entry.target}:over-time"


def severity(inventory: Inventory) -> str:
    """A routine that did not run: `high` on the scale (WARNING on the default one),
    else its highest level."""
    found = inventory.scale.get("high")
    return (found or inventory.scale.highest).name


@dataclass
class Pager:
    journal: JournalStore
    inventory: Inventory
    clock: Clock

    def store(self) -> Store:
        return Store(self.journal, self.inventory, self.clock)

    def _escalator(self, entry: Entry, run_id: str) -> Escalator:
        playbook = entry.playbook
        policy = self.inventory.escalation_of(playbook)
        return Escalator(
            self.store(), playbook.name, entry.target, run_id, policy, playbook.escalation_threshold
        )

    def missed(self, entry: Entry, message: str) -> str:
        where = f"{entry.playbook.name} did not run on {entry.target}"
        return self.page(entry, missed_key(entry), f"{where}: {message}", "did not run")

    def page(self, entry: Entry, key: str, message: str, gate: str) -> str:
        """Open (or count again) an incident through the playbook's policy; what happened."""
        escalator = self._escalator(entry, "")
        try:
            opened = escalator.escalate(
                key, severity(self.inventory), message, policy=None, gate=gate
            )
        except (ValueError, RunbookError) as exc:
            return f"not paged: {exc}"
        finally:
            escalator.finish()
        return f"incident {opened.get('id', '?')} {opened.get('state', '')}: {message}"

    def recovered(self, entry: Entry, run_id: str, over_time: bool) -> None:
        """The routine ran to its end: its did-not-run incident resolves, and its
        over-time one unless this run was over time itself."""
        keys = {missed_key(entry)}
        if not over_time:
            keys.add(overtime_key(entry))
        escalator = self._escalator(entry, run_id)
        escalator.recovered(keys)
        escalator.finish()
