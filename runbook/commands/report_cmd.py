"""`runbook report RUN_ID`: one run as a report document, rendered.

The run is read with its steps, and with the incidents it opened or counted
on and their deliveries from this run (their states as of now).
"""

from __future__ import annotations

from pathlib import Path

from runbook.commands.history import journal_for
from runbook.errors import UsageError
from runbook.journal.records import DeliveryRecord, IncidentRecord, RunRecord
from runbook.journal.store import JournalStore
from runbook.runreport import render
from runbook.runreport.document import Document, from_run


def document(inventory: Path | None, run_id: str) -> Document:
    journal = journal_for(inventory)
    try:
        run = journal.run(run_id)
        if run is None:
            raise UsageError(f"no run {run_id!r} in the journal (or the prefix is ambiguous)")
        incidents, deliveries = alerts_of(journal, run)
    finally:
        journal.close()
    return from_run(run, incidents, deliveries)


def alerts_of(
    journal: JournalStore, run: RunRecord
) -> tuple[list[IncidentRecord], list[DeliveryRecord]]:
    """The incidents the run touched (last counted on by it, or notified for
    it), oldest first, with their deliveries from this run."""
    incidents, deliveries = [], []
    for incident in reversed(journal.incidents(only_open=False)):
        if incident.updated_at < run.started_at:
            continue  # not changed since the run began: not its
        sent = [d for d in journal.deliveries_of(incident.id) if d.run_id == run.id]
        if sent or incident.last_run == run.id:
            incidents.append(incident)
            deliveries += sent
    return incidents, deliveries


def report(inventory: Path | None, run_id: str, fmt: str) -> str:
    return render.render(document(inventory, run_id), fmt)
