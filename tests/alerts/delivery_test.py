"""Who holds a pending delivery, and when it counts as abandoned."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from runbook.alerts.delivery import Holder, abandoned, reason
from runbook.journal.records import DeliveryRecord


def _row(error: str | None, status: str = "pending") -> DeliveryRecord:
    return DeliveryRecord.from_row(
        {
            "id": 1, "incident_id": None, "run_id": None, "channel": "log", "event": "notify",
            "level": None, "status": status, "attempts": 1, "error": error,
            "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z",
            "dedupe": None,
        }
    )  # fmt: skip


def test_a_live_holder_on_this_host_keeps_its_delivery() -> None:
    me = Holder.me()
    assert me.pid == os.getpid() and me.started is not None
    held = me.mark("sending (attempt 1)", 60)
    assert not abandoned(_row(held)) and not abandoned(_row(held, "retrying"))
    assert me.holds(held) and reason(held) == "sending (attempt 1)"


def test_a_dead_holder_or_a_reused_pid_or_an_expired_lease_lets_it_go() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = Holder(socket.gethostname(), child.pid, time.time() - 5)
    assert abandoned(_row(dead.mark("sending (attempt 1)", 600)))
    # This pid, but another start time: another process that got the number.
    me = Holder.me()
    assert me.started is not None
    reused = Holder(me.host, me.pid, me.started - 1000)
    assert abandoned(_row(reused.mark("queued", 600)))
    assert abandoned(_row(me.mark("queued", -1)))  # the lease ran out


def test_another_hosts_holder_is_trusted_until_its_lease_ends() -> None:
    other = Holder("some-other-host.example", 1, 0.0)
    assert not abandoned(_row(other.mark("sending (attempt 2)", 600)))
    assert abandoned(_row(other.mark("sending (attempt 2)", -1)))


def test_let_go_and_finished_deliveries() -> None:
    assert abandoned(_row("the run ended before it was delivered"))  # nobody holds it
    assert abandoned(_row(None))
    me = Holder.me()
    assert not abandoned(_row(me.mark("x", -1), "delivered"))
    assert not abandoned(_row(None, "failed"))


def test_a_receivers_text_cannot_forge_a_holder() -> None:
    # An error detail that ends like a holder mark is still followed by ours,
    # and a released one has none: the mark that counts is the last one.
    forged = "HTTP 500 [held by pid 1 started 0.00 on x until 99999999999]"
    assert abandoned(_row(f"the run ended before it was delivered ({forged}); retry"))
