"""The run's notifier (incidents on failed gates, notify steps) and the tick that
moves open incidents along their escalation timeline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from runbook.alerts import delivery
from runbook.alerts.delivery import Delivery
from runbook.alerts.escalation import at_or_above
from runbook.alerts.incidents import RECOVERED_BY, Store
from runbook.clock import iso
from runbook.journal.events import Conflict
from runbook.journal.records import IncidentRecord
from runbook.model import Inventory, seconds

DEFAULT_GRACE = 2.0  # seconds a run waits for its deliveries at most


def grace(inventory: Inventory) -> float:
    """`defaults.delivery_grace` of the inventory, or 2 s."""
    data = inventory.doc.data if inventory.doc is not None else {}
    raw = (data.get("defaults") or {}).get("delivery_grace") if isinstance(data, dict) else None
    found = seconds(raw) if raw is not None else None
    return DEFAULT_GRACE if found is None else found


def tick(store: Store) -> list[str]:
    """Do the escalation work that is due: safe to run every minute, from cron,
    twice at once. Returns what was done, one line each."""
    # First what dead processes left undelivered: at least once.
    done: list[str] = delivery.retry_abandoned(store)
    now = iso(store.clock.now())
    for due in store.journal.incidents_due(now):
        incident = due
        for stop in store.due(due):
            claimed = store.claim(incident, stop, None, {})
            if claimed is None:
                break  # another tick got there first
            incident, deliveries = claimed  # moved past the stop: the next claim expects that
            results = [store.deliver(d) for d in deliveries]
            sent = ", ".join(f"{r['channel']} {r['status']}" for r in results) or "nobody"
            done.append(f"incident {incident.id} ({incident.key}): {stop.label}: {sent}")
    return done


class Escalator:
    """The run's notifier: opens incidents on failed gates, sends notify steps.

    Deliveries go out on threads of their own, so a slow or failing channel
    never holds the run up: a notify step and the run's end each wait at most
    the grace period (`defaults.delivery_grace`, 2 s). What is still going when
    the run ends is let go — pending in the journal, with the reason — and the
    next `runbook escalations tick` (or run) sends it. A run also takes up, in
    the background, what dead processes left undelivered.
    """

    def __init__(
        self,
        store: Store,
        playbook: str,
        target: str,
        run_id: str,
        policy: str | None,
        threshold: str | None,
        take_up_abandoned: bool = True,
        attend: Callable[[threading.Thread], None] | None = None,
        open_incidents: Callable[[set[str]], list[IncidentRecord]] | None = None,
    ) -> None:
        self.store = store
        # Told of each thread that writes through the store, so whoever owns
        # the store's connection closes it once they end (runbook.fleet.group).
        self._attend = attend
        # The open incidents of some keys (those of the gates that passed):
        # read from the journal unless the run's targets share one read.
        self._open_incidents = open_incidents or (
            lambda keys: self.store.journal.incidents(only_open=True, keys=keys)
        )
        self.playbook = playbook
        self.target = target
        self.run_id = run_id
        self.policy = policy
        self.threshold = threshold
        self.grace = grace(store.inventory)
        self.events: list[dict[str, Any]] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._going: list[tuple[Delivery, dict[str, Any]]] = []
        # What dead processes left undelivered, taken up by one run (of a
        # fleet's, the first): each target doing it would ask the journal again.
        self._taken: set[int] = set()
        if take_up_abandoned:
            self._start(lambda: delivery.retry_abandoned(self.store, self._stop, taken=self._taken))

    def _start(self, work: Any) -> threading.Thread:
        thread = threading.Thread(target=work, name="runbook-deliveries", daemon=True)
        thread.start()
        self._threads.append(thread)
        if self._attend is not None:
            self._attend(thread)
        return thread

    def _send(
        self, deliveries: list[Delivery]
    ) -> tuple[list[dict[str, Any]], list[threading.Thread]]:
        """Start sending, each on its own thread (the grace period bounds the slowest,
        not the sum); the results, pending until each ends, and the threads."""
        results = []
        threads = []
        for d in deliveries:
            result: dict[str, Any] = {"channel": d.channel.name, "status": "pending", "attempts": 0}
            self._going.append((d, result))
            results.append(result)

            def work(d: Delivery = d, result: dict[str, Any] = result) -> None:
                result.update(delivery.send(self.store, d, self._stop))

            threads.append(self._start(work))
        return results, threads

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
        # The incident's key and message go to the journal and to every channel
        # (the key as PagerDuty's dedup_key): both pass the run's redactor.
        key, message = self.store.redactor.text(key), self.store.redactor.text(message)
        try:
            return self._open(key, severity, message, policy, gate, explicit)
        except Exception as exc:
            if explicit:
                raise
            # A failed gate must still halt the run as it should: say what went wrong.
            self.events.append(
                {
                    "incident": "?",
                    "key": key,
                    "severity": severity,
                    "state": f"could not be opened: {exc}",
                }
            )
            return {"state": f"failed: {exc}"}

    def _open(
        self, key: str, severity: str, message: str, policy: str | None, gate: str, explicit: bool
    ) -> dict[str, Any]:
        name = policy or self.policy
        inventory = self.store.inventory
        if name is None or name not in inventory.policies:
            if explicit:
                raise ValueError(
                    f"no escalation policy for {key!r}: give the playbook `escalation:`"
                )
            return {"state": "no policy"}
        threshold = self.threshold or inventory.policies[name].threshold
        if not explicit and not at_or_above(inventory.scale, severity, threshold):
            return {"state": f"below the {threshold} threshold"}
        incident, new = self.store.raise_(
            key,
            severity,
            message,
            policy=name,
            gate=gate,
            playbook=self.playbook,
            target=self.target,
            run_id=self.run_id,
        )
        record: dict[str, Any] = {
            "incident": incident.id,
            "key": key,
            "severity": incident.severity,
            "state": "opened"
            if new
            else f"updated (seen {incident.occurrences} times; not paged again)",
        }
        deliveries: list[Delivery] = []
        for stop in self.store.due(incident):
            claimed = self.store.claim(incident, stop, self.run_id, {})
            if claimed is None:
                break
            incident, planned = claimed  # moved past the stop: the next claim expects that
            deliveries.extend(planned)
        if deliveries:
            record["deliveries"], _ = self._send(deliveries)
        self.events.append(record)
        return {"id": incident.id, "state": record["state"]}

    def recovered(self, keys: set[str]) -> None:
        """Resolve the open incidents of gates that passed in this run, telling
        every channel that was paged (PagerDuty gets its resolve event). Never
        raises: a run is not broken by its notifications."""
        if not keys:
            return  # no gate passed: nothing can have recovered, nothing to read
        try:
            recovering = self._open_incidents(keys)
        except Exception as exc:
            self.events.append(
                {
                    "incident": "?",
                    "key": "",
                    "severity": "",
                    "state": f"not checked for recovery: {exc}",
                }
            )
            return
        for incident in recovering:
            note = f"the gate passed again in run {self.run_id}"
            record: dict[str, Any] = {
                "incident": incident.id,
                "key": incident.key,
                "severity": incident.severity,
                "state": "resolved: its gate passed again",
            }
            try:
                _, deliveries = self.store.settle(
                    incident.id, "resolved", RECOVERED_BY, note, self.run_id
                )
            except (ValueError, KeyError, Conflict):
                continue  # resolved by someone else meanwhile
            except Exception as exc:
                record["state"] = f"could not be resolved: {exc}"
                deliveries = []
            if deliveries:
                record["deliveries"], _ = self._send(deliveries)
            self.events.append(record)

    def notify(
        self,
        channel_names: list[str],
        message: str,
        *,
        subject: str | None,
        severity: str | None,
        to: list[str],
    ) -> list[dict[str, Any]]:
        note = {
            "event": "notify",
            "at": iso(self.store.clock.now()),
            "message": message,
            "subject": subject,
            "severity": severity,
            "playbook": self.playbook,
            "target": self.target,
            "run_id": self.run_id,
            "to": to,
        }
        note = self.store.redactor.value(note)  # what channels get, and the journal keeps
        deliveries = [
            self.store.plan_notice(self.store.inventory.channels[name], note, self.run_id)
            for name in channel_names
        ]
        # A notify step is the procedure itself: it waits for its deliveries,
        # as long as the grace period; the run's end lets go of the rest.
        results, threads = self._send(deliveries)
        deadline = time.monotonic() + self.grace
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        shown = [dict(r) for r in results]  # as they stand now: the step's result
        self.events.append(
            {"notify": note["subject"] or note["message"][:60], "deliveries": results}
        )
        return shown

    def finish(self, cut: str | None = None) -> list[dict[str, Any]]:
        """Wait (at most the grace period in all) for deliveries still going, let go
        of the rest (pending, for the next tick); what happened. `cut`: why the
        wait was cut short (then there is none)."""
        deadline = time.monotonic() + (0.0 if cut else self.grace)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()
        ended = cut or f"the run ended before it was delivered (grace period {self.grace:g}s)"
        why = f"{ended}; the next `runbook escalations tick` sends it"
        for d, result in self._going:
            if result["status"] in ("delivered", "failed"):
                continue
            # Stopped between attempts or still in one: the journal says whether
            # this process still holds it (let_go does nothing otherwise).
            left = delivery.let_go(self.store, d, why)
            if left is not None:
                result.update(status="pending", error=left, attempts=d.attempts)
        delivery.let_go_all(self.store, why, self._taken)  # the abandoned ones this run took up
        # What the summary and --format json show: an error text may quote anything.
        events: list[dict[str, Any]] = self.store.redactor.value(self.events)
        return events
