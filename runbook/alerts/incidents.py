"""Incidents and deliveries, kept in the journal.

An incident is keyed by playbook + gate + target: the same failure on the next
run counts on the open incident instead of paging again. Its place on the
escalation timeline (`level`, `next_at`) lives in the journal, so a restart
loses no timer. Moving to the next stop is a compare-and-swap on `level` in the
same transaction that creates its deliveries (each with a unique key): two
ticks at once cannot notify twice. A delivery is planned held by the process
that plans it, with the (redacted) notification in its event; sending it —
attempts, backoff, the holder and its lease, at least once — is
`runbook.alerts.delivery`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from runbook.alerts import delivery
from runbook.alerts.delivery import Delivery, Holder
from runbook.alerts.escalation import Stop, at_or_above, severity_policy, timeline
from runbook.clock import Clock, iso, parse_iso
from runbook.journal.events import Conflict
from runbook.journal.records import DeliveryRecord, IncidentRecord, IncidentStatus
from runbook.journal.store import JournalStore, StoreConfig, open_store
from runbook.model import Channel, Inventory
from runbook.redact import Redactor

# Who resolves an incident whose gate passed again (runbook.alerts.notifier):
# only such an incident reopens on a flap; one a person resolved does not.
RECOVERED_BY = "runbook (its gate passed again)"


@dataclass
class Store:
    """Incident and delivery records, on one journal, at one clock."""

    journal: JournalStore
    inventory: Inventory
    clock: Clock
    redactor: Redactor = field(default_factory=Redactor)

    def now(self) -> str:
        return iso(self.clock.now())

    def change(
        self,
        table: str,
        op: str,
        row: dict[str, Any],
        kind: str,
        run_id: str | None = None,
        **extra: Any,
    ) -> tuple[str, str | None, str, dict[str, Any]]:
        return (self.now(), run_id, kind, {"table": table, "op": op, "row": row, **extra})

    # -- reading ---------------------------------------------------------------

    def get(self, incident_id: int) -> IncidentRecord | None:
        return self.journal.incident(incident_id)

    def open_by_key(self, key: str) -> IncidentRecord | None:
        return self.journal.open_incident(key)

    def deliveries(self, incident_id: int) -> list[DeliveryRecord]:
        return self.journal.deliveries_of(incident_id)

    # -- incidents ---------------------------------------------------------------

    def stops(self, incident: IncidentRecord) -> list[Stop]:
        return self._timeline(incident.policy, incident.severity)

    def _timeline(self, policy_name: str | None, severity: str) -> list[Stop]:
        policy = self.inventory.policies.get(policy_name or "")
        if policy is None:
            return []
        entry = severity_policy(policy, severity, self.inventory.scale)
        return timeline(entry) if entry else []

    def _next_at(self, stops: list[Stop], opened_at: str, level: int) -> str | None:
        """When stop `level` of the timeline is due (None: no stop left)."""
        if level >= len(stops):
            return None
        opened = parse_iso(opened_at)
        return iso(opened + timedelta(seconds=stops[level].after))

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
        """Open the incident `key`, or count one more occurrence on the open one.

        Returns the incident and whether it is new.
        """
        now = self.now()
        existing = self.open_by_key(key)
        if existing is None:
            flapped = self._reopen(key, policy, message, run_id, now)
            if flapped is not None:
                return flapped, False
            row = {
                "key": key, "playbook": playbook, "gate": gate, "target": target, "policy": policy,
                "severity": severity, "status": "open", "title": f"{playbook}: {gate} on {target}",
                "message": self.redactor.text(message), "opened_at": now, "updated_at": now,
                "occurrences": 1, "last_run": run_id, "level": 0,
            }  # fmt: skip
            row["next_at"] = self._next_at(self._timeline(policy, severity), now, 0)
            try:
                (incident_id,) = self.journal.append(
                    [self.change("incidents", "insert", row, "incident.open", run_id)]
                )
            except Conflict:  # opened meanwhile by another run
                existing = self.open_by_key(key)
            else:
                incident = self.get(incident_id)
                assert incident is not None
                return incident, True
        assert existing is not None
        update: dict[str, Any] = {
            "id": existing.id,
            "occurrences": existing.occurrences + 1,
            "updated_at": now,
            "last_run": run_id,
            "message": self.redactor.text(message),
        }
        if (
            at_or_above(self.inventory.scale, severity, existing.severity)
            and severity != existing.severity
        ):
            update["severity"] = severity  # worse than before: the record says so
        self.journal.append([self.change("incidents", "update", update, "incident.repeat", run_id)])
        incident = self.get(existing.id)
        assert incident is not None
        return incident, False

    def _reopen(
        self, key: str, policy: str, message: str, run_id: str | None, now: str
    ) -> IncidentRecord | None:
        """A gate failing again within the policy's flap_window of recovering:
        its incident reopens where it was, counted, and pages no one again
        (the levels it reached stay reached). None if it is not a flap."""
        window = getattr(self.inventory.policies.get(policy), "flap_window", None)
        if not window:
            return None
        last = self.journal.last_resolved(key)
        if last is None or last.resolved_at is None or last.resolved_by != RECOVERED_BY:
            return None  # resolved by a person: failing again is news
        if parse_iso(now) - parse_iso(last.resolved_at) > timedelta(seconds=window):
            return None
        update: dict[str, Any] = {
            "id": last.id, "status": "open", "resolved_at": None, "resolved_by": None,
            "resolution": None, "occurrences": last.occurrences + 1, "updated_at": now,
            "last_run": run_id, "message": self.redactor.text(message),
            "next_at": self._next_at(self._timeline(policy, last.severity), last.opened_at, last.level),
        }  # fmt: skip
        try:
            self.journal.append(
                [
                    self.change(
                        "incidents", "update", update, "incident.flap", run_id,
                        expect={"status": "resolved"},
                    )
                ]
            )  # fmt: skip
        except Conflict:  # reopened, or another incident opened, meanwhile
            return None
        return last.changed(update)

    def due(self, incident: IncidentRecord) -> list[Stop]:
        """Stops not yet done whose time has come (an acknowledged incident has none)."""
        if incident.status is not IncidentStatus.OPEN:
            return []
        opened = parse_iso(incident.opened_at)
        now = self.clock.now()
        return [
            s
            for s in self.stops(incident)[incident.level :]
            if opened + timedelta(seconds=s.after) <= now
        ]

    def claim(
        self, incident: IncidentRecord, stop: Stop, run_id: str | None, context: dict[str, Any]
    ) -> tuple[IncidentRecord, list[Delivery]] | None:
        """Move the incident past `stop` and create its deliveries, atomically: the
        incident as it now is, and the deliveries; None if someone else did it first."""
        level = incident.level
        update = {
            "id": incident.id,
            "level": level + 1,
            "next_at": self._next_at(self.stops(incident), incident.opened_at, level + 1),
            "updated_at": self.now(),
        }
        if stop.repeat:
            update["repeats"] = stop.repeat
        note = self._note(incident, stop.event, context, stop=stop)
        events = [
            self.change(
                "incidents",
                "update",
                update,
                f"incident.{stop.event}",
                run_id,
                expect={"level": level, "status": "open"},
            )
        ]
        planned: list[Delivery] = []
        for recipient in stop.level.notify:
            channel = self.inventory.channels[recipient.channel]
            row = {
                "incident_id": incident.id, "run_id": run_id, "channel": channel.name,
                "event": stop.event, "level": stop.level_number, "created_at": self.now(),
                "updated_at": self.now(), "dedupe": f"{incident.id}:{stop.number}:{channel.name}",
            }  # fmt: skip
            event, planned_delivery = self.planned(
                row, channel, {**note, "to": list(recipient.to)}, run_id
            )
            events.append(event)
            planned.append(planned_delivery)
        try:
            ids = self.journal.append(events)
        except Conflict:
            return None
        return incident.changed(update), _numbered(planned, ids)

    def _note(
        self,
        incident: IncidentRecord,
        event: str,
        context: dict[str, Any],
        stop: Stop | None = None,
    ) -> dict[str, Any]:
        scale = self.inventory.scale
        level = scale.get(incident.severity)
        note = {
            "event": event,
            "at": self.now(),
            "severity": incident.severity,
            "nagios": level.nagios if level else 2,
            "message": incident.message,
            "subject": incident.title,
            "playbook": incident.playbook,
            "target": incident.target,
            "gate": incident.gate,
            "run_id": incident.last_run,
            "occurrences": incident.occurrences,
            "incident": {
                "id": incident.id,
                "key": incident.key,
                "status": incident.status.value,
                "severity": incident.severity,
                "opened_at": incident.opened_at,
                "occurrences": incident.occurrences,
            },
            **context,
        }
        if stop is not None:
            note.update({"level": stop.level_number, "level_name": stop.level.name})
        return note

    def rebuilt_note(self, row: DeliveryRecord) -> dict[str, Any] | None:
        """The notification of an incident's delivery, made again from the incident
        (for deliveries planned before notes were kept in their event)."""
        incident = self.get(row.incident_id) if row.incident_id is not None else None
        if incident is None:
            return None
        event = row.event
        if event in ("acknowledge", "resolve"):
            by = incident.acknowledged_by if event == "acknowledge" else incident.resolved_by
            return {**self._note(incident, event, {"by": by}), "message": f"{event}d by {by}"}
        stop = next((s for s in self.stops(incident) if s.level_number == row.level), None)
        to = [
            t for r in (stop.level.notify if stop else ()) if r.channel == row.channel for t in r.to
        ]
        note: dict[str, Any] = self.redactor.value(
            {**self._note(incident, event, {}, stop=stop), "to": to}
        )
        return note

    def settle(
        self, incident_id: int, status: str, by: str, note: str | None, run_id: str | None = None
    ) -> tuple[IncidentRecord, list[Delivery]]:
        """Acknowledge or resolve; returns the incident and the deliveries telling the
        channels already notified."""
        incident = self.get(incident_id)
        if incident is None:
            raise KeyError(incident_id)
        before = incident.status.value
        if before == "resolved" or (status == "acknowledged" and before == "acknowledged"):
            raise ValueError(f"incident {incident_id} is already {before}")
        now = self.now()
        if status == "acknowledged":
            update = {
                "id": incident_id,
                "status": status,
                "acknowledged_at": now,
                "acknowledged_by": by,
                "next_at": None,
                "updated_at": now,
            }
            event = "acknowledge"
        else:
            update = {
                "id": incident_id,
                "status": status,
                "resolved_at": now,
                "resolved_by": by,
                "resolution": note,
                "next_at": None,
                "updated_at": now,
            }
            event = "resolve"
        sent = self.deliveries(incident_id)
        already = {d.channel for d in sent if d.event == event}  # a reopened incident's second end
        told = sorted(
            {d.channel for d in sent if d.event not in ("acknowledge", "resolve")} - already
        )
        incident = incident.changed(update)
        message = f"{event}d by {by}" + (f": {note}" if note else "")
        events = [
            self.change(
                "incidents",
                "update",
                update,
                f"incident.{event}",
                run_id,
                expect={"status": before},
            )
        ]
        planned: list[Delivery] = []
        for name in told:
            channel = self.inventory.channels.get(name)
            if channel is None:
                continue
            row = {
                "incident_id": incident_id, "run_id": run_id, "channel": name, "event": event,
                "level": incident.level, "created_at": now, "updated_at": now,
                "dedupe": f"{incident_id}:{event}:{name}",
            }  # fmt: skip
            note_of = {**self._note(incident, event, {"by": by}), "message": message}
            planned_event, planned_delivery = self.planned(row, channel, note_of, run_id)
            events.append(planned_event)
            planned.append(planned_delivery)
        ids = self.journal.append(events)
        return incident, _numbered(planned, ids)

    def plan_notice(self, channel: Channel, note: dict[str, Any], run_id: str | None) -> Delivery:
        now = self.now()
        row = {
            "incident_id": None, "run_id": run_id, "channel": channel.name, "event": "notify",
            "level": None, "created_at": now, "updated_at": now,
        }  # fmt: skip
        event, planned = self.planned(row, channel, note, run_id)
        (planned.id,) = self.journal.append([event])
        return planned

    # -- deliveries --------------------------------------------------------------

    def deliver(self, planned: Delivery) -> dict[str, Any]:
        """Send with retries and backoff; every attempt recorded. Never raises."""
        return delivery.send(self, planned)

    def planned(
        self, row: dict[str, Any], channel: Channel, note: dict[str, Any], run_id: str | None
    ) -> tuple[tuple[str, str | None, str, dict[str, Any]], Delivery]:
        """The event planning one delivery, held by this process, and the delivery.

        The note goes into the event (redacted): a tick that finds the delivery
        abandoned sends it from there."""
        note = self.redactor.value(note)
        held = Holder.me().mark("queued", delivery.attempt_timeout(channel) + 60.0)
        row = {**row, "status": "pending", "attempts": 0, "error": held}
        event = self.change("deliveries", "insert", row, "delivery.planned", run_id, note=note)
        return event, Delivery(0, channel, note, 0, held)


def _numbered(planned: list[Delivery], ids: list[int]) -> list[Delivery]:
    """The planned deliveries with the ids the journal gave them (the last inserts)."""
    for item, number in zip(planned, ids[len(ids) - len(planned) :], strict=True):
        item.id = number
    return planned


def store_for(
    inventory: Inventory, config: StoreConfig, clock: Clock, redactor: Redactor | None = None
) -> Store:
    return Store(open_store(config), inventory, clock, redactor or Redactor())


def ack_due(store: Store, incident: IncidentRecord) -> tuple[datetime | None, datetime | None]:
    """When acknowledgement and mitigation are due, by the policy's targets."""
    policy = store.inventory.policies.get(incident.policy or "")
    entry = severity_policy(policy, incident.severity, store.inventory.scale) if policy else None
    opened = parse_iso(incident.opened_at)
    ack = (
        opened + timedelta(seconds=entry.acknowledge_within)
        if entry and entry.acknowledge_within
        else None
    )
    mitigate = (
        opened + timedelta(seconds=entry.mitigate_within)
        if entry and entry.mitigate_within
        else None
    )
    return ack, mitigate
