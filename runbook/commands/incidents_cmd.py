"""`runbook incidents`, `ack`, `resolve`, `escalations tick`, `escalation show`."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any

from runbook.alerts import delivery, escalation, incidents, notifier
from runbook.clock import Clock, iso
from runbook.errors import UsageError
from runbook.journal.records import DeliveryRecord, IncidentStatus
from runbook.journal.store import config_for
from runbook.model import Inventory
from runbook.service import load_inventory


def _store(inventory_path: Path | None) -> tuple[incidents.Store, Inventory]:
    inventory = load_inventory(inventory_path, Path.cwd())
    config = config_for(inventory)
    return incidents.store_for(inventory, config, Clock.from_environment()), inventory


def listing(inventory_path: Path | None, only_open: bool) -> list[dict[str, Any]]:
    """The incidents as `runbook incidents --format json` shows them: each with its
    deliveries and response targets; then notify steps' deliveries not delivered."""
    store, _ = _store(inventory_path)
    try:
        rows: list[dict[str, Any]] = []
        now = store.clock.now()
        for incident in store.journal.incidents(only_open=only_open):
            ack, mitigate = incidents.ack_due(store, incident)
            open_ = incident.status is IncidentStatus.OPEN
            rows.append(
                {
                    **incident.as_dict(),
                    "deliveries": [_delivery(d) for d in store.deliveries(incident.id)],
                    "acknowledge_due": iso(ack) if ack else None,
                    "mitigate_due": iso(mitigate) if mitigate else None,
                    "acknowledge_overdue": bool(ack and open_ and now > ack),
                }
            )
        loose = store.journal.loose_deliveries()
        if loose:  # notify steps' deliveries not delivered: no incident to list them under
            rows.append(
                {"id": None, "kind": "notifications", "deliveries": list(map(_delivery, loose))}
            )
        return rows
    finally:
        store.journal.close()


def _delivery(row: DeliveryRecord) -> dict[str, Any]:
    """A delivery as listed: `state` says whether it is being sent or was left for the tick."""
    shown: dict[str, Any] = {
        "id": row.id,
        "channel": row.channel,
        "event": row.event,
        "level": row.level,
        "status": row.status.value,
        "attempts": row.attempts,
        "run_id": row.run_id,
    }
    shown["error"] = delivery.reason(row.error) or None
    if row.status in delivery.PENDING:
        shown["state"] = "abandoned" if delivery.abandoned(row) else "sending"
    return shown


def _pending_lines(deliveries: list[dict[str, Any]]) -> str:
    return "".join(
        f"; {d['channel']} {d['status']} after {d['attempts']} attempt(s)"
        + (
            " (left for the next tick)"
            if d.get("state") == "abandoned"
            else " (being sent)"
            if d.get("state") == "sending"
            else ""
        )
        + (f": {d['error']}" if d["error"] else "")
        for d in deliveries
        if d["status"] != "delivered"
    )


def describe(row: dict[str, Any]) -> list[str]:
    if row.get("kind") == "notifications":
        return [
            f"notifications not delivered: {len(row['deliveries'])}"
            + _pending_lines(row["deliveries"])
        ]
    status = row["status"]
    if status == "acknowledged":
        status += f" by {row['acknowledged_by']} at {row['acknowledged_at']}"
    elif status == "resolved":
        status += f" by {row['resolved_by']} at {row['resolved_at']}" + (
            f" ({row['resolution']})" if row["resolution"] else ""
        )
    lines = [
        f"#{row['id']} {row['severity']} {status} — {row['title']} (seen {row['occurrences']} time(s), level {row['level']})",
        f"    opened {row['opened_at']}; {row['message']}",
    ]
    if row["acknowledge_due"] and row["status"] == "open":
        late = " — OVERDUE" if row["acknowledge_overdue"] else ""
        lines.append(
            f"    acknowledge by {row['acknowledge_due']}{late}"
            + (f"; next escalation {row['next_at']}" if row["next_at"] else "")
        )
    sent = sum(1 for d in row["deliveries"] if d["status"] == "delivered")
    failed = sum(1 for d in row["deliveries"] if d["status"] == "failed")
    pending = len(row["deliveries"]) - sent - failed
    lines.append(
        f"    deliveries: {sent} delivered, {failed} failed"
        + (f", {pending} pending" if pending else "")
        + _pending_lines(row["deliveries"])
    )
    return lines


def settle(
    inventory_path: Path | None, incident_id: int, status: str, by: str | None, note: str | None
) -> list[str]:
    store, _ = _store(inventory_path)
    who = by or os.environ.get("RUNBOOK_OPERATOR") or getpass.getuser()
    try:
        try:
            _, deliveries = store.settle(incident_id, status, who, note)
        except KeyError:
            raise UsageError(f"no incident {incident_id}") from None
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        results = [store.deliver(d) for d in deliveries]
    finally:
        store.journal.close()
    lines = [f"incident {incident_id} {status} by {who}"]
    lines += [f"  told {r['channel']}: {r['status']}" for r in results]
    return lines


def tick(inventory_path: Path | None) -> list[str]:
    store, _ = _store(inventory_path)
    try:
        return notifier.tick(store)
    finally:
        store.journal.close()


def show(inventory_path: Path | None, policy: str, severity: str | None) -> list[str]:
    inventory = load_inventory(inventory_path, Path.cwd())
    return escalation.show(inventory, policy, severity)
