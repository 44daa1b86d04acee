"""`runbook schedule list | explain | export`: the project's schedules.

Registered on the `runbook` group by importing this module (runbook.cli); the
logic is in runbook.commands.schedule_cmd.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from runbook.cli.main import FORMATS, INVENTORY, main, run_command


@main.group()
def schedule() -> None:
    """The schedules of the project's playbooks: list, explain, export.

    \b
    Times are computed with $RUNBOOK_NOW as now when it is set. Only the
    calendar is here yet: the scheduler daemon and its fire ledger are not
    built, so nothing runs these schedules by itself (export them to cron or
    systemd meanwhile).
    """


@schedule.command("list")
@INVENTORY
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
def list_(inventory: Path | None, fmt: str) -> None:
    """Every scheduled playbook × target: the schedule in words and the next three fires.

    The LAST FIRE, RESULT and RUN columns show "-" (null in JSON): they come
    from the scheduler's fire ledger, which does not exist yet.
    """

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
