"""`runbook schedule list | explain | export | disable | enable` and
`runbook scheduler run | tick | status`: the project's schedules and the
scheduler that fires them.

Registered on the `runbook` group by importing this module (runbook.cli); the
logic is in runbook.commands.schedule_cmd and runbook.commands.scheduler_cmd.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from runbook.cli.main import FORMATS, INVENTORY, main, run_command


@main.group()
def schedule() -> None:
    """The schedules of the project's playbooks: list, explain, export, disable, enable.

    \b
    `runbook scheduler run` fires them. Times are computed with $RUNBOOK_NOW
    as now when it is set.
    """


@schedule.command("list")
@INVENTORY
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
def list_(inventory: Path | None, fmt: str) -> None:
    """Every scheduled playbook × target: the schedule in words, the next three
    fires, the last fire with its result and run, and flags (overdue: a slot
    past its deadline that no scheduler recorded; failing: the last fire did
    not end ok; paused: disabled)."""

    def _list() -> int:
        from runbook.commands import schedule_cmd

        rows = schedule_cmd.list_rows(inventory)
        if fmt == "json":
            click.echo(json.dumps(rows, indent=2))
        else:
            click.echo(schedule_cmd.render_list(rows))
        return 0

    run_command(_list)


@schedule.command()
@click.argument("playbook")
@INVENTORY
@click.option("--next", "count", default=20, show_default=True, help="How many fires to show.")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
def explain(playbook: str, inventory: Path | None, count: int, fmt: str) -> None:
    """The next fires of PLAYBOOK (a file, or a playbook's name), with daylight-saving
    shifts and blackouts marked."""

    def _explain() -> int:
        from runbook.commands import schedule_cmd

        report = schedule_cmd.explain(playbook, inventory, count)
        if fmt == "json":
            click.echo(json.dumps(report, indent=2))
        else:
            click.echo(schedule_cmd.render_explain(report))
        return 0

    run_command(_explain)


@schedule.command("export")
@INVENTORY
@click.option("--cron", "as_cron", is_flag=True, help="Print crontab lines.")
@click.option(
    "--systemd",
    "folder",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write a .service and .timer per schedule into this folder.",
)
def export_(inventory: Path | None, as_cron: bool, folder: Path | None) -> None:
    """Schedules for the OS's scheduler: units or crontab lines that call `runbook run`.

    Blackouts, overlap, catch-up and the one-fire-per-slot guarantee are
    runbook's own and are not carried over.
    """

    def _export() -> int:
        from runbook.commands import schedule_cmd

        if as_cron == (folder is not None):
            click.echo("give exactly one of --cron and --systemd DIR", err=True)
            return 2
        if as_cron:
            click.echo(schedule_cmd.export_cron(inventory), nl=False)
            return 0
        assert folder is not None
        for path in schedule_cmd.export_systemd(inventory, folder):
            click.echo(str(path))
        return 0

    run_command(_export)


REASON = click.option("--reason", required=True, help="Why (journaled with your name).")
TARGETS = click.option(
    "-t",
    "--target",
    "targets",
    multiple=True,
    help="Only on this target (repeatable); default: all.",
)


@schedule.command()
@click.argument("playbook")
@TARGETS
@INVENTORY
@REASON
def disable(playbook: str, targets: tuple[str, ...], inventory: Path | None, reason: str) -> None:
    """Stop firing PLAYBOOK's schedules (on its targets, or some): journaled.
    Slots that come while disabled are recorded as paused, never paged."""
    _pause(playbook, targets, inventory, True, reason)


@schedule.command()
@click.argument("playbook")
@TARGETS
@INVENTORY
@REASON
def enable(playbook: str, targets: tuple[str, ...], inventory: Path | None, reason: str) -> None:
    """Fire PLAYBOOK's schedules again: journaled. Slots missed while disabled are not run."""
    _pause(playbook, targets, inventory, False, reason)


def _pause(
    playbook: str, targets: tuple[str, ...], inventory: Path | None, paused: bool, reason: str
) -> None:
    def _do() -> int:
        from runbook.commands import scheduler_cmd

        for line in scheduler_cmd.pause(playbook, targets, inventory, paused, reason):
            click.echo(line)
        return 0

    run_command(_do)


def _log(line: str) -> None:
    """One line per event, stamped, flushed: what systemd's journal (or a pipe) reads."""
    from runbook.clock import Clock, iso

    click.echo(f"{iso(Clock().now())} {line}")
    sys.stdout.flush()


@main.group()
def scheduler() -> None:
    """The scheduler that fires the project's schedules.

    \b
    Several may run at once, on one host or many sharing a PostgreSQL journal:
    each slot is claimed in the journal's fire ledger and runs once.
    """


@scheduler.command("run")
@INVENTORY
def run_(inventory: Path | None) -> None:
    """The scheduler, in the foreground: fires what is due, one log line each,
    and runs the escalation ticks. SIGTERM or Ctrl-C stops it: the runs going
    are interrupted as Ctrl-C interrupts them, and journaled."""

    def _run() -> int:
        from runbook.commands import scheduler_cmd

        return scheduler_cmd.run(inventory, _log)

    run_command(_run)


@scheduler.command()
@INVENTORY
@click.option("--now", help="Tick as if it were this time (ISO, e.g. 2026-12-04T08:00:00Z).")
def tick(inventory: Path | None, now: str | None) -> None:
    """One pass: fire what is due, wait for those runs, exit (for cron, and tests)."""

    def _tick() -> int:
        from runbook.commands import scheduler_cmd

        return scheduler_cmd.tick(inventory, now, _log)

    run_command(_tick)


@scheduler.command()
@INVENTORY
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option(
    "--exit-codes",
    type=click.Choice(["default", "nagios"]),
    default="default",
    show_default=True,
    help="nagios: 0 OK, 2 CRITICAL when no scheduler ticked within a minute.",
)
def status(inventory: Path | None, fmt: str, exit_codes: str) -> None:
    """Every scheduler's heartbeat (host, pid, last tick). Exits 1 (nagios: 2
    CRITICAL) when none ticked within a minute: an outside monitor watches the watcher."""

    def _status() -> int:
        from runbook.commands import scheduler_cmd

        rows, alive = scheduler_cmd.status(inventory)
        if fmt == "json":
            click.echo(json.dumps({"alive": alive, "schedulers": rows}, indent=2))
        else:
            for line in scheduler_cmd.render_status(rows, alive):
                click.echo(line)
        return scheduler_cmd.status_code(alive, exit_codes)

    run_command(_status, nagios=exit_codes == "nagios")


@scheduler.command(hidden=True)
@click.argument("spec")
def fire(spec: str) -> None:
    """One scheduled run (started by the scheduler; SPEC is its run spec as JSON)."""

    def _fire() -> int:
        from runbook import report
        from runbook.commands import notifications, scheduler_cmd

        return scheduler_cmd.fire(spec, report.SilentReporter, notifications.notifier_for)

    run_command(_fire)
