"""Sending one delivery: claimed, attempted, recorded — at least once.

While a delivery is not yet delivered (status `pending` or `retrying`), its
`error` column says why, and who holds it: `[held by pid P started S on H
until T]` — the process (with its start time, so a reused pid is not taken
for it) and a lease (epoch seconds). Every change of a delivery is a
compare-and-swap on (`attempts`, `error`) in the journal, so of two processes
only one claims the next attempt. A delivery whose holder is gone — killed, or
on another host past its lease — or that a run let go when its grace period
ran out is *abandoned*; the next `runbook escalations tick` (or run) claims and
sends it again. An attempt cut off by a crash may have reached the receiver:
delivery is at least once.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from runbook.alerts import channels
from runbook.journal.events import Conflict
from runbook.journal.records import UNSENT, DeliveryRecord
from runbook.model import Channel, seconds

if TYPE_CHECKING:
    from runbook.alerts.incidents import Store

PENDING = UNSENT  # deliveries someone is still to send
_HOLD = re.compile(r" \[held by pid (\d+) started ([0-9.]+|-) on (\S+) until ([0-9]+)\]$")
# A holder that is not known dead keeps a delivery this long past an attempt's timeout.
_LEASE_SLACK = 60.0


@dataclass(frozen=True)
class Holder:
    """A process that holds deliveries."""

    host: str
    pid: int
    started: float | None

    @classmethod
    def me(cls) -> Holder:
        from runbook.journal.recorder import process_started

        return cls(socket.gethostname(), os.getpid(), process_started(os.getpid()))

    def mark(self, text: str, lease: float) -> str:
        started = f"{self.started:.2f}" if self.started is not None else "-"
        until = int(time.time() + lease)
        return f"{text} [held by pid {self.pid} started {started} on {self.host} until {until}]"

    def holds(self, error: str | None) -> bool:
        held = _held(error)
        return held is not None and held[0] == self


def _held(error: str | None) -> tuple[Holder, int] | None:
    match = _HOLD.search(error or "")
    if match is None:
        return None
    pid, started, host, until = match.groups()
    return Holder(host, int(pid), None if started == "-" else float(started)), int(until)


def reason(error: str | None) -> str:
    """The error text without its holder mark: what a person reads."""
    return _HOLD.sub("", error or "")


def abandoned(row: DeliveryRecord) -> bool:
    """Whether nobody alive is working on this pending delivery."""
    from runbook.journal.reconcile import alive

    if row.status not in PENDING:
        return False
    held = _held(row.error)
    if held is None:
        return True  # let go (a run's grace period ran out), or never claimed
    holder, until = held
    if time.time() > until:
        return True
    if holder.host != socket.gethostname():
        return False  # cannot look at another host's processes: the lease decides
    return not alive(holder.pid, holder.started)


@dataclass
class Delivery:
    id: int
    channel: Channel
    note: dict[str, Any]
    attempts: int = 0  # as last recorded: the compare-and-swap expects these
    error: str | None = None


def attempt_timeout(channel: Channel) -> float:
    return seconds(channel.settings.get("timeout")) or channels.DEFAULT_TIMEOUT


def _result(d: Delivery, status: str, detail: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"channel": d.channel.name, "status": status, "attempts": d.attempts}
    if status == "delivered":
        out["detail"] = detail
    elif detail:
        out["error"] = detail
    return out


def _swap(store: Store, d: Delivery, row: dict[str, Any], kind: str, *more: Any) -> bool:
    """Record a change of `d` if nobody changed it meanwhile; False if someone did."""
    events = [
        *more,
        store.change(
            "deliveries",
            "update",
            {"id": d.id, "updated_at": store.now(), **row},
            kind,
            expect={"attempts": d.attempts, "error": d.error},
        ),
    ]
    try:
        store.journal.append(events)
    except Conflict:
        return False
    except Exception:  # a journal hiccup must not turn into a lost page: send anyway
        pass
    d.attempts, d.error = row.get("attempts", d.attempts), row.get("error")
    return True


def send(
    store: Store, d: Delivery, stop: threading.Event | None = None, cut_off: str | None = None
) -> dict[str, Any]:
    """Attempts with backoff, each claimed and recorded; never raises.

    `stop` set (the run's grace period is over) ends it between attempts; the
    run then lets the delivery go for the next tick. `cut_off`: what to record
    on the attempt a dead holder left in flight, with the first claim.
    """
    channel, me = d.channel, Holder.me()
    retry = channel.settings.get("retry") or {}
    tries = int(retry.get("attempts", 3))
    delay = seconds(retry.get("delay")) if retry.get("delay") is not None else 1.0
    backoff = float(retry.get("backoff", 2.0))
    timeout = attempt_timeout(channel)
    secrets: set[str] = set()
    for i in range(1, tries + 1):
        if stop is not None and stop.is_set():
            return _result(d, "pending", reason(d.error))
        n = d.attempts + 1
        claim = store.change(
            "attempts",
            "insert",
            {"delivery_id": d.id, "attempt": n, "at": store.now(), "ok": 0, "detail": "sending"},
            "delivery.attempt",
        )
        earlier = []
        if cut_off is not None and i == 1 and d.attempts:
            earlier.append(
                store.change(
                    "attempts",
                    "update",
                    {"delivery_id": d.id, "attempt": d.attempts, "detail": cut_off},
                    "delivery.attempt",
                )
            )
        held = me.mark(f"sending (attempt {n})", timeout + _LEASE_SLACK)
        if not _swap(
            store,
            d,
            {"status": "pending", "attempts": n, "error": held},
            "delivery.claimed",
            *earlier,
            claim,
        ):
            return _result(d, "taken", "another process is sending it")
        try:
            detail, ok = (
                channels.send(channel, store.redactor.value(d.note), secrets, store.inventory.root),
                True,
            )
        except Exception as exc:
            detail, ok = str(exc), False
        store.redactor.add(secrets)
        detail = store.redactor.text(detail)
        if ok:
            row = {"status": "delivered", "error": None}
        elif i == tries:
            row = {"status": "failed", "error": detail}
        else:
            wait = f"; next attempt in {delay:g}s" if delay else ""
            lease = (delay or 0) + timeout + _LEASE_SLACK
            row = {"status": "retrying", "error": me.mark(f"{detail}{wait}", lease)}
        done = store.change(
            "attempts",
            "update",
            {"delivery_id": d.id, "attempt": n, "ok": int(ok), "detail": detail},
            "delivery.attempt",
        )
        if not _swap(store, d, row, f"delivery.{row['status']}", done):
            return _result(d, "pending", "let go before the attempt ended")
        if ok:
            return _result(d, "delivered", detail)
        if i < tries and delay:
            if stop is not None:
                stop.wait(delay)
            else:
                store.clock.sleep(delay)
            delay *= backoff
    return _result(d, "failed", reason(d.error))


def let_go(store: Store, d: Delivery, why: str) -> str | None:
    """Release a delivery this process still holds: pending, for the next tick.

    Returns the reason recorded, or None if it was no longer ours (finished)."""
    me = Holder.me()
    for _ in range(5):
        row = store.journal.delivery(d.id)
        if row is None or row.status not in PENDING or not me.holds(row.error):
            return None
        # A copy: the thread still sending `d` expects its own last record, so
        # its late outcome cannot overwrite the release (the tick owns it now).
        d = replace(d, attempts=row.attempts, error=row.error)
        last = reason(row.error)
        text = f"{why} ({last})" if last and not last.startswith("sending") else why
        more = []
        if last.startswith("sending"):
            text = f"{why}; attempt {row.attempts} had no answer yet (it may have arrived)"
            more.append(
                store.change(
                    "attempts",
                    "update",
                    {
                        "delivery_id": d.id,
                        "attempt": row.attempts,
                        "detail": "no answer before the run ended",
                    },
                    "delivery.attempt",
                )
            )
        if _swap(store, d, {"status": "pending", "error": text}, "delivery.pending", *more):
            return text
    return None


def let_go_all(store: Store, why: str, only: set[int]) -> int:
    """Release the deliveries `only` names that this process still holds (the
    retries of abandoned ones a run took up; never another run's of this
    process, still sending); how many."""
    if not only:
        return 0
    me, count = Holder.me(), 0
    for row in store.journal.unsent_deliveries():
        channel = store.inventory.channels.get(row.channel)
        if channel is None or row.id not in only or not me.holds(row.error):
            continue
        held = Delivery(row.id, channel, {}, row.attempts, row.error)
        count += let_go(store, held, why) is not None
    return count


def note_of(store: Store, row: DeliveryRecord) -> dict[str, Any] | None:
    """The notification a delivery was planned with (kept, redacted, in its event)."""
    return store.journal.planned_note(row.run_id, row.id)


def retry_abandoned(
    store: Store,
    stop: threading.Event | None = None,
    on_result: Callable[[str], None] | None = None,
    taken: set[int] | None = None,
) -> list[str]:
    """Claim and send the deliveries nobody alive is sending; one line each.
    `taken` is told each one claimed (for let_go_all, should the run end first)."""
    done = []
    for row in store.journal.unsent_deliveries():
        if stop is not None and stop.is_set():
            break
        if not abandoned(row):
            continue
        channel = store.inventory.channels.get(row.channel)
        note = note_of(store, row) or store.rebuilt_note(row)
        if channel is None or note is None:
            continue  # nothing to send it with: left as it is, shown by `runbook incidents`
        d = Delivery(row.id, channel, note, row.attempts, row.error)
        if taken is not None:
            taken.add(row.id)
        held = _held(row.error)
        cut_off = None
        if held is not None and reason(row.error).startswith("sending"):
            cut_off = (
                f"cut off: pid {held[0].pid} on {held[0].host} ended during this attempt"
                " (it may have arrived)"
            )
        result = send(store, d, stop, cut_off)
        if result["status"] == "taken":
            continue
        line = f"delivery {row.id} ({row.event}, {channel.name}) retried: {result['status']}"
        done.append(line)
        if on_result is not None:
            on_result(line)
    return done
