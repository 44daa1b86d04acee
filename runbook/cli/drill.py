"""`runbook drill run | list | show | note | signoff`: audited emergency drills.

Registered on the `runbook` group by importing this module (runbook.cli); the
logic is in runbook.drill and runbook.commands.drill_cmd.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from runbook.cli import prompts
from runbook.cli.main import FORMATS, INVENTORY, main, run_command
from runbook.cli.runs import reporter_factory


@main.group()
def drill() -> None:
    """Rehearse an emergency procedure on a marked copy of its target, timed
    against its objectives, with a scorecard an auditor can read."""


@drill.command("run")
@click.argument("playbook", type=click.Path(path_type=Path))
@click.option("-t", "--target", help="The target copied (one); default: the playbook's.")
@INVENTORY
@click.option(
    "--participant",
    "participants",
    multiple=True,
    metavar="NAME[:ROLE]",
    help="Who takes part, and as what (repeatable): recorded on the drill.",
)
@click.option(
    "-e",
    "--extra-vars",
    "extra",
    multiple=True,
    help="Variables for the procedure and the recovery (key=value, @file, JSON), as for run.",
)
@click.option("--keep", is_flag=True, help="Keep the copy afterwards (it is dropped by default).")
@click.option(
    "--yes", is_flag=True, help="Answer the procedure's questions yes (a drill nobody attends)."
)
@click.option("-q", "--quiet", is_flag=True, help="Only failures and the summary.")
def run_(
    playbook: Path,
    target: str | None,
    inventory: Path | None,
    participants: tuple[str, ...],
    extra: tuple[str, ...],
    keep: bool,
    yes: bool,
    quiet: bool,
) -> None:
    """Run PLAYBOOK (kind: drill, or an emergency procedure) as a drill: copy
    the target, inject, run the procedure on the copy, measure, score.

    \b
    Writes the scorecard (JSON, Markdown, HTML) to .runbook/drills/ID/.
    Exit 0: every objective met; 1: one missed, or the procedure or the recovery
    ended without passing; 3: the copy could not be made, or a step (an inject
    too) errored; 130: interrupted."""

    def _run() -> int:
        from runbook.commands import drill_cmd
        from runbook.drill import runner

        request = runner.Drill(
            playbook, inventory, target, drill_cmd.participants(participants), keep, yes,
            extra=extra,
        )  # fmt: skip
        ready = _ready if prompts.attended() and not yes else None
        outcome = runner.run(
            request, reporter_factory("text", quiet), prompts.step_prompter(), ready
        )
        for line in drill_cmd.summary(outcome.record):
            click.echo(line)
        for path in drill_cmd.write_scorecards(inventory, outcome.record.id):
            click.echo(f"  scorecard: {path}")
        return outcome.exit_code

    run_command(_run)


def _ready(inject_at: str) -> None:
    click.echo(f"\nInjects applied at {inject_at}: the clock runs.")
    click.prompt(
        "Press Enter when the responders start the procedure",
        default="",
        show_default=False,
        prompt_suffix=" ",
    )


@drill.command("list")
@click.argument("playbook", required=False)
@INVENTORY
@click.option("--limit", default=50, show_default=True)
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
def list_(playbook: str | None, inventory: Path | None, limit: int, fmt: str) -> None:
    """Drills, newest first, with the time to recover and its trend against the
    playbook's earlier drills."""

    def _list() -> int:
        from runbook.commands import drill_cmd

        rows = drill_cmd.listing(inventory, playbook, limit)
        if fmt == "json":
            click.echo(json.dumps(rows, indent=2))
        elif not rows:
            click.echo("no drills recorded", err=True)
        for line in drill_cmd.render_listing(rows) if fmt == "text" else ():
            click.echo(line)
        return 0

    run_command(_list)


@drill.command()
@click.argument("drill_id")
@INVENTORY
@click.option("--format", "fmt", type=click.Choice(["text", "json", "md", "html"]), default="text")
@click.option("--out", type=click.Path(path_type=Path), help="Write to this file.")
def show(drill_id: str, inventory: Path | None, fmt: str, out: Path | None) -> None:
    """A drill's scorecard: objectives and per-step targets against the actuals,
    people, findings, corrective actions and sign-offs."""

    def _show() -> int:
        from runbook.commands import drill_cmd

        text = drill_cmd.scorecard(inventory, drill_id, fmt)
        if out is not None:
            out.write_text(text)
            click.echo(str(out))
        else:
            click.echo(text, nl=False)
        return 0

    run_command(_show)


@drill.command()
@click.argument("drill_id")
@INVENTORY
@click.option("--finding", help="Something the drill showed.")
@click.option("--action", help="A corrective action (with --owner and --due).")
@click.option("--owner", help="Who carries the action out.")
@click.option("--due", help="By when (YYYY-MM-DD).")
def note(
    drill_id: str,
    inventory: Path | None,
    finding: str | None,
    action: str | None,
    owner: str | None,
    due: str | None,
) -> None:
    """Record a finding or a corrective action on a drill (journaled, with who)."""

    def _note() -> int:
        from runbook.commands import drill_cmd

        click.echo(drill_cmd.note(inventory, drill_id, finding, action, owner, due))
        return 0

    run_command(_note)


@drill.command()
@click.argument("drill_id")
@INVENTORY
@click.option("--comment", help="What the sign-off says.")
def signoff(drill_id: str, inventory: Path | None, comment: str | None) -> None:
    """Sign a drill off (refused to the user who ran it: four eyes)."""

    def _signoff() -> int:
        from runbook.commands import drill_cmd

        click.echo(drill_cmd.signoff(inventory, drill_id, comment))
        return 0

    run_command(_signoff)
