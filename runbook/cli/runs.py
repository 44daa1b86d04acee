"""`runbook run`: run a playbook on a target, or on a group's targets at once;
and what `resume` and `rollback` (runbook.cli.recovery) share with it."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path
from typing import Any

import click

from runbook.cli import collector, fleetview, prompts
from runbook.cli.main import INVENTORY, main, run_command, write_report

BREAK_GLASS = click.option(
    "--break-glass",
    "break_glass",
    metavar="REASON",
    help="Proceed without the approval the playbook needs, where its policy allows it: "
    "journaled with REASON, and its approvers are notified to review it.",
)
CONFIRM_TARGET = click.option(
    "--confirm-target",
    "confirm_targets",
    multiple=True,
    metavar="NAME",
    help="With --yes: the protected target (or group) named ahead, for runs without a terminal.",
)


def reporter_factory(fmt: str, quiet: bool, verbose: bool = False, expanded: bool = False) -> Any:
    from runbook import report

    if fmt == "json":
        return report.SilentReporter
    if sys.stdout.isatty():
        from rich.console import Console

        console = Console()
        return lambda: report.RichReporter(console, quiet=quiet, verbose=verbose, expanded=expanded)
    return lambda: report.PlainReporter(sys.stdout, quiet=quiet, verbose=verbose, expanded=expanded)


def ask() -> Any:
    """The question before a run on a protected target or an emergency."""
    return prompts.ask_before_start if prompts.attended() else None


@main.command()
@click.argument("playbook", type=click.Path(path_type=Path))
@click.option(
    "-t",
    "--target",
    "targets",
    multiple=True,
    help="Target or group (repeatable); default: the playbook's, else the inventory's.",
)
@INVENTORY
@click.option(
    "-e",
    "--extra-vars",
    "extra",
    multiple=True,
    help="key=value, @vars.yaml or a JSON object (repeatable).",
)
@click.option("--tags", default="", help="Run only steps with these tags (comma-separated).")
@click.option("--skip-tags", default="", help="Skip steps with these tags (comma-separated).")
@click.option(
    "--check",
    is_flag=True,
    help="Dry run: read-only steps run read-only; writing steps are shown, not run.",
)
@click.option(
    "--rehearse",
    is_flag=True,
    help="Run it all in one transaction, rolled back at the end: gates pass or fail, nothing changes.",
)
@click.option(
    "--yes", "-y", is_flag=True, help="Answer yes to confirm steps (needed without a terminal)."
)
@click.option(
    "--forks",
    type=click.IntRange(1, 1000),
    help="Run this many targets of a group at once (default: the playbook's strategy.forks, "
    "else the inventory's defaults.forks, else 10).",
)
@click.option(
    "--limit",
    "limit",
    multiple=True,
    metavar="PATTERN",
    help="Only the targets whose names match (globs; !PATTERN leaves out; repeatable, "
    "or comma-separated).",
)
@click.option(
    "--queue",
    "to_queue",
    is_flag=True,
    help="Queue a run per target for `runbook worker` instead of running here "
    "(needs a PostgreSQL journal); prints the queued run ids.",
)
@click.option(
    "--rerun-failed",
    "rerun",
    metavar="FLEET_RUN_ID",
    help="Only the targets that failed or were unreachable in that fleet run.",
)
@CONFIRM_TARGET
@BREAK_GLASS
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["rich", "json"]),
    default="rich",
    show_default=True,
    help="Output: lines (rich on a terminal, plain otherwise) or one JSON document.",
)
@click.option(
    "--junit", type=click.Path(path_type=Path), help="Also write a JUnit XML report here."
)
@click.option(
    "--exit-codes",
    type=click.Choice(["default", "nagios"]),
    default="default",
    show_default=True,
    help="nagios: exit 0/1/2/3 by severity (OK/WARNING/CRITICAL/UNKNOWN).",
)
@click.option(
    "--no-notify",
    is_flag=True,
    help="Open no incident and page no one; notify/escalate steps are skipped "
    "(a monitoring system running the check alerts on its own).",
)
@click.option(
    "--list-steps",
    is_flag=True,
    help="Print the plan (steps, tags, what may write, rollbacks) and stop; connects to nothing.",
)
@click.option(
    "--start-at-step",
    metavar="ID|NAME|N",
    help="Begin at this top-level step; what skipped steps register must come with -e.",
)
@click.option("--step", "step_by_step", is_flag=True, help="Ask before each step: y/n/c(ontinue).")
@click.option(
    "--expanded",
    "-x",
    is_flag=True,
    help="Show result rows one field per line, like psql's \\x (on a terminal, a table "
    "too wide for it is shown so anyway).",
)
@click.option("-q", "--quiet", is_flag=True, help="Show only failures and the summary.")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Show what each step sent (SQL with its bound values, secrets masked; a command) "
    "and the PostgreSQL client programs it used.",
)
def run(
    playbook: Path,
    targets: tuple[str, ...],
    inventory: Path | None,
    extra: tuple[str, ...],
    tags: str,
    skip_tags: str,
    check: bool,
    rehearse: bool,
    yes: bool,
    confirm_targets: tuple[str, ...],
    break_glass: str | None,
    forks: int | None,
    limit: tuple[str, ...],
    to_queue: bool,
    rerun: str | None,
    fmt: str,
    junit: Path | None,
    exit_codes: str,
    no_notify: bool,
    list_steps: bool,
    start_at_step: str | None,
    step_by_step: bool,
    expanded: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Run PLAYBOOK against its targets, step by step, and record it in the journal.

    With --exit-codes nagios it is a monitoring plugin: the first line is
    `RUNBOOK STATE - summary | perfdata`, the steps follow, and anything that
    kept the check from running is 3 UNKNOWN."""
    if check and rehearse:
        raise click.UsageError("--check and --rehearse are two different dry runs; choose one")

    plugin = exit_codes == "nagios" and fmt != "json"  # text output: a monitoring plugin's

    def _run() -> int:
        from runbook import service

        if rerun is not None:
            chosen = _failed_of(rerun, playbook, inventory)
            if not chosen:
                click.echo(f"nothing to run again: every target of fleet run {rerun} passed")
                return 0
        request = service.RunSpec(
            playbook=playbook,
            inventory=inventory,
            targets=chosen if rerun is not None else targets,
            extra=extra,
            tags=frozenset(t for t in tags.split(",") if t),
            skip_tags=frozenset(t for t in skip_tags.split(",") if t),
            check=check,
            rehearse=rehearse,
            yes=yes,
            exit_codes=exit_codes,
            confirm_targets=confirm_targets,
            notify=not no_notify,
            start_at=start_at_step,
            break_glass=break_glass,
            forks=forks,
            limit=limit,
        )
        if to_queue:
            from runbook.commands import queue_cmd

            fleet, queued = queue_cmd.enqueue(request)
            for q in queued:
                click.echo(f"{q.target:<20} queued  run {q.run_id}  job {q.job}")
            if fleet:
                click.echo(f"fleet run {fleet}: runbook show {fleet} (once the workers ran it)")
            return 0
        if list_steps:
            from runbook import report

            the_plan, writes = service.plan_listing(request)
            for line in report.plan_lines(the_plan, writes):
                click.echo(line)
            return 0
        if step_by_step and not prompts.attended():
            raise click.UsageError("--step asks before each step: it needs a terminal")
        # A plugin's first line is its verdict: the steps are held until it is known.
        held = io.StringIO() if plugin else None
        # Targets at once show as a line each as they end (JSON: one document at the end),
        # on a terminal as a live table redrawn in place (runbook.live).
        table = _live_table() if held is None and fmt != "json" else None
        view = (
            None
            if fmt == "json"
            else _table_view(table)
            if table
            else fleetview.TargetLines(held).view()
        )
        # Loading makes only long-lived objects: the collector waits until the steps begin.
        with collector.Quiet() as collecting, table or contextlib.nullcontext():
            outcomes = service.run(
                request,
                _held_reporter(held, quiet, verbose, expanded)
                if held
                else reporter_factory(fmt, quiet, verbose, expanded),
                _paused(table, prompts.step_prompter()),
                notifier(),
                on_loaded=collecting.steps_begin,
                ask=ask(),
                step_by_step=prompts.step_asker() if step_by_step else None,
                approval_wait=_paused(table, approval_wait()),
                view=view,
            )
        if held is None:
            return finish_runs(outcomes, request.exit_codes, fmt, junit, request.fleet)
        from runbook import nagios

        code = service.exit_code(outcomes, exit_codes)
        click.echo(nagios.status_line(outcomes, code))
        click.echo(held.getvalue(), nl=False)
        if junit is not None:
            from runbook import report

            write_report(junit, report.junit(outcomes))
        return code

    run_command(_run, nagios=exit_codes == "nagios", plugin=plugin)


def _failed_of(fleet_id: str, playbook: Path, inventory: Path | None) -> tuple[str, ...]:
    from runbook.commands import history
    from runbook.load import loader

    found, _ = loader.load_playbook(playbook)
    name = found.name if found is not None else playbook.stem
    return history.failed_targets(inventory, fleet_id, name)


def _live_table() -> Any:
    """On a terminal: the targets running at once as a table, redrawn in place."""
    if not sys.stdout.isatty():
        return None
    from runbook import live

    return live.on_terminal(sys.stdout)


def _table_view(table: Any) -> Any:
    from runbook.fleet.group import FleetView

    return FleetView(table.reporter, table.begin, table.started, table.ended)


def _paused(table: Any, ask: Any) -> Any:
    """A question or a message at the terminal: the live table gives way to it."""
    return table.pausing(ask) if table is not None and ask is not None else ask


def approval_wait() -> Any:
    """At a terminal a run waits for its approval in place; without one it parks."""
    if not prompts.attended():
        return None

    def wait(request: Any) -> None:
        click.echo(
            f"{request.playbook} on {request.target} needs an approval ({request.quorum} of "
            f"{', '.join(request.approvers or []) or 'anyone but the operator'}): "
            f"runbook approve {request.run_id} — waiting (Ctrl-C stops the run)",
            err=True,
        )

    return wait


def _held_reporter(held: io.StringIO, quiet: bool, verbose: bool, expanded: bool) -> Any:
    from runbook import report

    return lambda: report.PlainReporter(held, quiet=quiet, verbose=verbose, expanded=expanded)


def notifier() -> Any:
    from runbook.commands import notifications

    return notifications.notifier_for


def finish_runs(
    outcomes: Any, exit_codes: str, fmt: str, junit: Path | None, fleet: str | None = None
) -> int:
    from runbook import report, service

    code: int = service.exit_code(outcomes, exit_codes)
    if fmt == "json":
        click.echo(report.json_document(outcomes, code, fleet))
    if junit is not None:
        write_report(junit, report.junit(outcomes))
    if fleet is not None and fmt != "json":
        from runbook.fleet.summary import summary_lines

        for line in summary_lines(outcomes, fleet):
            click.echo(line)
    elif len(outcomes) > 1 and fmt != "json":
        click.echo("")
        for outcome in outcomes:
            click.echo(
                f"  {outcome.target:<20} {outcome.status.value:<12} exit {outcome.exit_code}  {outcome.run_id}"
            )
    return code
