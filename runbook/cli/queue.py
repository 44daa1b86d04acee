"""`runbook worker` and `runbook queue`: runs queued in the journal's
PostgreSQL database, taken by workers on any host that reaches it.

Registered on the `runbook` group by importing this module (runbook.cli); the
logic is in runbook.commands.queue_cmd and runbook.queue.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from runbook.cli.main import FORMATS, INVENTORY, main, run_command


def _seconds(name: str, default: float) -> float:
    """Heartbeat settings, from the environment (tests shorten them)."""
    return float(os.environ.get(name, default))


@main.command()
@INVENTORY
@click.option(
    "--concurrency", type=click.IntRange(1, 100), default=1, show_default=True,
    help="Runs at once in this worker (each on a thread of its own).",
)  # fmt: skip
@click.option("--queues", default="", help="Comma-separated queues to take from (default: all).")
def worker(inventory: Path | None, concurrency: int, queues: str) -> None:
    """Take queued runs (`runbook run --queue`) and run them, until SIGTERM or
    Ctrl-C (running runs are then interrupted and journaled, as Ctrl-C would).

    \b
    Needs a PostgreSQL journal (the queue lives in its database). Runs on any
    host that reaches it, from a checkout of the project at the same path.
    A worker silent for 30 s is dead: its runs are marked interrupted and
    resumed by another worker (on_worker_loss: resume, the default for checks)
    or left for a person (halt, the default for what writes)."""

    def _worker() -> int:
        from runbook.commands import queue_cmd

        return queue_cmd.run_worker(
            inventory,
            concurrency,
            tuple(q for q in queues.split(",") if q),
            lambda line: click.echo(line, err=True),
            heartbeat=_seconds("RUNBOOK_WORKER_HEARTBEAT", 10.0),
            stalled_after=_seconds("RUNBOOK_WORKER_STALLED_AFTER", 30.0),
        )

    run_command(_worker)


@main.command()
@INVENTORY
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option("--drain", is_flag=True, help="Cancel every run still waiting (running ones go on).")
def queue(inventory: Path | None, fmt: str, drain: bool) -> None:
    """Queued, running and stuck runs (stuck: running on a worker silent for
    30 s, which the next worker's reaper takes over)."""

    def _queue() -> int:
        from runbook.commands import queue_cmd

        if drain:
            click.echo(f"{queue_cmd.drain(inventory)} waiting run(s) cancelled")
            return 0
        rows = queue_cmd.listing(inventory, _seconds("RUNBOOK_WORKER_STALLED_AFTER", 30.0))
        if fmt == "json":
            click.echo(json.dumps(rows, indent=2, default=str))
            return 0
        if not rows:
            click.echo("the queue is empty", err=True)
        for r in rows:
            who = f"  worker {r['worker']}" if r["worker"] is not None else ""
            if r["heartbeat_age_s"] is not None:
                who += f", heartbeat {r['heartbeat_age_s']}s ago"
            click.echo(
                f"{r['job']:>6}  {r['status']:<8} {r['playbook'] or r['task']:<40} "
                f"{r['target'] or '':<16} run {r['run_id'] or '-'}{who}"
            )
        return 0

    run_command(_queue)
