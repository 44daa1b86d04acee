"""The run's notifier (incidents on failed gates, notify steps) and the tick that
moves open incidents along their escalation timeline."""

from __future__ import annotations

import threading
import time
from typing import Any

from runbook.clock import iso
from runbook.escalation import at_or_above
from runbook.incidents import Delivery, Store


def tick(store: Store) -> list[str]:
    """Do the escalation work that is due: safe to run every minute, from cron,
    twice at once. Returns what was done, one line each."""
    done: list[str] = []
    now = iso(store.clock.now())
    for incident in store.journal.query(
        "SELECT * FROM incidents WHERE status = 'open' AND next_at IS NOT NULL AND next_at <= ? ORDER BY id",
        (now,),
    ):
        for stop in store.due(incident):
            deliveries = store.claim(incident, stop, None, {})
            if deliveries is None:
                break  # another tick got there first
            results = [store.deliver(d) for d in deliveries]
            sent = ", ".join(f"{r['channel']} {r['status']}" for r in results) or "nobody"
            done.append(f"incident {incident['id']} ({incident['key']}): {stop.label}: {sent}")
    return done


class Escalator:
    """The run's notifier: opens incidents on failed gates, sends notify steps.

    Deliveries go out on a thread of their own, so a slow or failing channel
    never holds the run up; `finish()` waits for them (a bounded time) so the
    summary can say what failed.
    """

    def __init__(
        self,
        store: Store,
        playbook: str,
        target: str,
        run_id: str,
        policy: str | None,
        threshold: str | None,
    ) -> None:
        self.store = store
        self.playbook = playbook
        self.target = target
        self.run_id = run_id
        self.policy = policy
        self.threshold = threshold
        self.events: list[dict[str, Any]] = []
        self._threads: list[threading.Thread] = []

    def _send(self, deliveries: list[Delivery], record: dict[str, Any]) -> None:
        def work() -> None:
            record["deliveries"] = [self.store.deliver(d) for d in deliveries]

        record["deliveries"] = [
            {"channel": d.channel.name, "status": "pending"} for d in deliveries
        ]
        thread = threading.Thread(target=work, name="runbook-deliveries", daemon=True)
        thread.start()
        self._threads.append(thread)

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
            "incident": incident["id"],
            "key": key,
            "severity": incident["severity"],
            "state": "opened"
            if new
            else f"updated (seen {incident['occurrences']} times; not paged again)",
        }
        deliveries: list[Delivery] = []
        for stop in self.store.due(incident):
            claimed = self.store.claim(incident, stop, self.run_id, {})
            if claimed is None:
                break
            deliveries.extend(claimed)
        if deliveries:
            self._send(deliveries, record)
        self.events.append(record)
        return {"id": incident["id"], "state": record["state"]}

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
        deliveries = [
            self.store.plan_notice(self.store.inventory.channels[name], note, self.run_id)
            for name in channel_names
        ]
        # A notify step is the procedure itself: it waits for its deliveries.
        results = [self.store.deliver(d) for d in deliveries]
        self.events.append({"notify": subject or message[:60], "deliveries": results})
        return results

    def finish(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Wait (at most `timeout` in all) for deliveries still going; what happened."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return self.events
