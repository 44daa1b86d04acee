"""The scheduler at 1,000 (schedule, target) pairs: 100 playbooks × 10 targets.

    .venv/bin/python bench/scheduler_bench.py [--idle 30] [--journal sqlite|postgresql]

Builds a project in a temporary folder: ten targets (never connected to) and
100 check playbooks with a daily cron schedule each (two a minute, 06:00 to
06:49 UTC), on all ten targets. Then, with the SQLite journal in the project (or
a PostgreSQL journal on the embedded server with --journal postgresql):

- **idle tick**: `Scheduler.tick` when no slot is due, the common case: which
  pairs have a slot due is one comparison per pair against the next slot kept
  in memory; median over 200 ticks (the heartbeat, escalation tick and
  reconciliation, each at most every few seconds, are in some of them: the
  90th percentile shows them);
- **busy tick**: a tick at a time when a slot of all 1,000 pairs is due: each
  pair's ledger head read, the slot decided and claimed (one insert each, in
  the journal), the run's process start replaced by a stub (what it costs is
  the operating system's, once per fire, not the scheduler's);
- **idle CPU**: `runbook scheduler run` as a real process on the project for
  `--idle` seconds with nothing due: its user+system CPU time from /proc over
  the wall time, in % of one core (after its start-up, which is not idle).

Figures go to stdout as a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PLAYBOOKS = 100
TARGETS = 10


def build(root: Path) -> None:
    targets = "".join(
        f"  t{i:02d}: {{dsn: 'host=/nonexistent dbname=t{i:02d}'}}\n" for i in range(TARGETS)
    )
    members = ", ".join(f"t{i:02d}" for i in range(TARGETS))
    (root / "inventory.yaml").write_text(
        f"targets:\n{targets}groups:\n  all_dbs: [{members}]\nscheduler: {{timezone: UTC}}\n"
    )
    folder = root / "playbooks"
    folder.mkdir()
    for n in range(PLAYBOOKS):
        minute = n % 50  # two playbooks a minute, 06:00 to 06:49: all within an hour
        (folder / f"p{n:03d}.yaml").write_text(
            f"name: p{n:03d}\nkind: check\n"
            f'schedule: {{cron: "{minute} 6 * * *", targets: [all_dbs]}}\n'
            "steps:\n  - name: look\n    query: SELECT 1\n"
        )


class _Stub:
    """A run's process that never ends (the busy tick measures the scheduler only)."""

    def poll(self) -> None:
        return None

    def send_signal(self, _sig: int) -> None:
        pass


def ticks(root: Path) -> dict[str, float]:
    from runbook.clock import FixedClock
    from runbook.schedule.launch import Launched
    from runbook.schedule.tick import Scheduler

    quiet = dt.datetime(2026, 12, 4, 3, 0, tzinfo=dt.UTC)  # no slot near
    clock = FixedClock(quiet)
    started = time.perf_counter()
    scheduler = Scheduler(
        root / "inventory.yaml",
        clock,
        lambda spec, delay: Launched(_Stub()),  # type: ignore[arg-type]
        near=root,
    )
    load = time.perf_counter() - started
    assert len(scheduler.entries) == PLAYBOOKS * TARGETS
    idle = []
    for _ in range(200):
        t0 = time.perf_counter()
        done = scheduler.tick(quiet)
        idle.append(time.perf_counter() - t0)
        assert not [line for line in done if line.startswith("fire")]
    # At 06:55 a slot of every pair is due (06:00-06:49), all within their hour's deadline.
    busy_at = dt.datetime(2026, 12, 4, 6, 55, tzinfo=dt.UTC)
    clock.moment = busy_at
    scheduler._last.clear()  # a bench: the periodic work is counted in too
    t0 = time.perf_counter()
    lines = scheduler.tick(busy_at)
    busy = time.perf_counter() - t0
    fired = len([line for line in lines if "started run" in line])
    scheduler.children.clear()
    scheduler.close()
    idle.sort()
    return {
        "load_s": load,
        "idle_median_ms": statistics.median(idle) * 1000,
        "idle_p90_ms": idle[int(len(idle) * 0.9)] * 1000,
        "busy_ms": busy * 1000,
        "busy_fired": fired,
    }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks_per_s = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks_per_s


def idle_cpu(root: Path, seconds: float) -> float:
    env = {**os.environ, "RUNBOOK_NOW": ""}
    env.pop("RUNBOOK_NOW")
    process = subprocess.Popen(
        [sys.executable, "-m", "runbook", "scheduler", "run"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        time.sleep(5)  # start-up: loading 100 playbooks is not idling
        before, t0 = cpu_seconds(process.pid), time.monotonic()
        time.sleep(seconds)
        used = cpu_seconds(process.pid) - before
        wall = time.monotonic() - t0
    finally:
        process.terminate()
        process.wait(30)
    return 100.0 * used / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle CPU measured")
    parser.add_argument("--journal", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build(root)
        os.environ.pop("RUNBOOK_JOURNAL", None)
        if args.journal == "postgresql":
            from runbook.pg import embedded

            server = embedded.start(root / "pg", keep_running=False)
            os.environ["RUNBOOK_JOURNAL"] = server.dsn
        figures: dict[str, Any] = ticks(root)
        figures["idle_cpu_pct"] = idle_cpu(root, args.idle)
    print(f"| 1,000 pairs ({args.journal} journal) | figure |")
    print("|---|---|")
    print(f"| load 100 playbooks | {figures['load_s']:.2f} s |")
    print(
        f"| idle tick, median (p90) | {figures['idle_median_ms']:.2f} ms "
        f"({figures['idle_p90_ms']:.2f} ms) |"
    )
    print(
        f"| busy tick: {figures['busy_fired']} slots decided and claimed | "
        f"{figures['busy_ms']:.0f} ms ({figures['busy_ms'] / max(1, figures['busy_fired']):.2f} ms a pair) |"
    )
    print(f"| idle CPU over {args.idle:g} s | {figures['idle_cpu_pct']:.2f} % of a core |")


if __name__ == "__main__":
    main()
