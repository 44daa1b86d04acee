"""The operating commands: history, incidents and escalation, the sandbox.

Registered on the `runbook` group by importing this module (runbook.cli); no logic here either.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from runbook.cli.main import FORMATS, INVENTORY, main, run_command, write_report

F = TypeVar("F", bound=Callable[..., Any])


@main.command()
@INVENTORY
@click.option("--playbook", help="Only runs of this playbook.")
@click.option("--target", help="Only runs on this target.")
@click.option(
    "--status",
    help="Only runs with this status (ok, gate_failed, failed, interrupted, rolled_back).",
)
@click.option(
    "--since",
    help="Only runs started within this long (30m, 12h, 7d, 2w); with --fires, slots.",
)
@click.option("--limit", default=50, show_default=True, help="At most this many runs.")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option(
    "--fires",
    is_flag=True,
    help="The schedules' fire ledger instead: every slot, run or not "
    "(missed, skipped, blacked out, paused, refused), with the reason.",
)
def history(
    inventory: Path | None,
    playbook: str | None,
    target: str | None,
    status: str | None,
    since: str | None,
    limit: int,
    fmt: str,
    fires: bool,
) -> None:
    """List recorded runs, newest first (--fires: the schedules' slots)."""

    def _history() -> int:
        from runbook.commands import history as hist

        if fires:
            ledger = hist.fires(inventory, playbook, target, status, limit, since)
            if fmt == "json":
                click.echo(json.dumps([f.as_dict() for f in ledger], indent=2))
                return 0
            if not ledger:
                click.echo("no fires recorded", err=True)
            for line in hist.fire_lines(ledger):
                click.echo(line)
            return 0

        rows = hist.runs(inventory, playbook, target, status, since, limit)
        if fmt == "json":
            click.echo(json.dumps([r.as_dict() for r in rows], indent=2, default=str))
            return 0
        if not rows:
            click.echo("no runs recorded", err=True)
        from runbook.report import shown

        for r in rows:
            taken = (r.selection or {}).get("queued")
            by = f"  worker {taken.get('worker')}" if isinstance(taken, dict) else ""
            click.echo(
                f"{r.id}  {r.started_at}  {r.playbook:<28} {shown(r.target or ''):<12} {r.mode.value:<8} "
                f"{r.status.value:<12} exit {r.exit_code if r.exit_code is not None else '-'}  "
                f"{r.severity or ''}{by}".rstrip()
            )
        return 0

    run_command(_history)


@main.command()
@click.argument("run_id")
@INVENTORY
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option(
    "--junit",
    type=click.Path(path_type=Path),
    help="Also write a JUnit XML report here (a test suite per target).",
)
def show(run_id: str, inventory: Path | None, fmt: str, junit: Path | None) -> None:
    """Show one run (RUN_ID or a unique prefix) with every step, or a fleet run
    (the id a group's run printed) as a matrix of targets × steps."""

    def _show() -> int:
        from runbook.commands import history as hist
        from runbook.errors import UsageError
        from runbook.outcome import Status

        try:
            run = hist.show(inventory, run_id)
            runs = [run]
        except UsageError:
            runs = hist.fleet(inventory, run_id)
            if not runs:
                raise
            run = None
        if junit is not None:
            from runbook import report

            write_report(junit, report.junit([hist.outcome_of(r) for r in runs]))
        if run is None:
            if fmt == "json":
                data = {"fleet": run_id, "runs": [r.as_dict() for r in runs]}
                click.echo(json.dumps(data, indent=2, default=str))
                return 0
            click.echo(f"fleet run {run_id}: {runs[0].playbook} on {len(runs)} target(s)")
            for line in hist.matrix(runs):
                click.echo(line)
            return 0
        if fmt == "json":
            click.echo(json.dumps(run.as_dict(), indent=2, default=str))
            return 0
        click.echo(
            f"run {run.id}: {run.playbook} on {run.target} ({run.mode.value}) by {run.operator}@{run.host}\n"
            f"  started {run.started_at}, ended {run.ended_at or '-'}; status {run.status.value}, "
            f"exit {run.exit_code if run.exit_code is not None else '-'}, severity {run.severity or '-'}"
        )
        from runbook.report import shown

        if run.reason:
            click.echo(f"  {shown(run.reason)}")
        fired = (run.selection or {}).get("fire")
        if isinstance(fired, dict):
            late = f", {fired['late']:g}s late" if fired.get("late") else ""
            click.echo(
                f"  fired by the schedule {fired.get('schedule')} for its slot "
                f"{fired.get('local')} ({fired.get('slot')}{late})"
            )
        taken = (run.selection or {}).get("queued")
        if isinstance(taken, dict):
            click.echo(f"  queued: job {taken.get('job')}, run by worker {taken.get('worker')}")
        if run.consent:
            from runbook.consent import describe

            click.echo(f"  {describe(run.consent)}")
        for step in run.steps or ():
            phase = " (rollback)" if step.phase == "rollback" else ""
            duration = f"{step.duration_ms:.1f} ms" if step.duration_ms is not None else ""
            click.echo(
                f"  {step.number:>5}  {step.status.value:<12} {step.name}{phase}  {duration}"
            )
            if step.error or (step.reason and step.status is not Status.OK):
                click.echo(f"         {shown(step.error or step.reason or '')}")
            if step.rendered:
                first = step.rendered.strip().splitlines()[0]
                click.echo(f"         sql: {shown(first[:100])}")
        return 0

    run_command(_show)


@main.command()
@INVENTORY
@click.option("--open", "only_open", is_flag=True, help="Only incidents not resolved.")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
def incidents(inventory: Path | None, only_open: bool, fmt: str) -> None:
    """List incidents (newest first) with their deliveries and response targets."""

    def _incidents() -> int:
        from runbook.commands import incidents_cmd

        rows = incidents_cmd.listing(inventory, only_open)
        if fmt == "json":
            click.echo(json.dumps(rows, indent=2, default=str))
            return 0
        if not rows:
            click.echo("no incidents", err=True)
        for row in rows:
            for line in incidents_cmd.describe(row):
                click.echo(line)
        return 0

    run_command(_incidents)


@main.command()
@click.argument("incident_id", type=int)
@INVENTORY
@click.option("--by", help="Who acknowledges (default: $RUNBOOK_OPERATOR or the login name).")
def ack(incident_id: int, inventory: Path | None, by: str | None) -> None:
    """Acknowledge an incident: no further escalation levels are notified."""

    def _ack() -> int:
        from runbook.commands import incidents_cmd

        for line in incidents_cmd.settle(inventory, incident_id, "acknowledged", by, None):
            click.echo(line)
        return 0

    run_command(_ack)


@main.command()
@click.argument("incident_id", type=int)
@INVENTORY
@click.option("--by", help="Who resolves (default: $RUNBOOK_OPERATOR or the login name).")
@click.option("--note", help="What was done.")
def resolve(incident_id: int, inventory: Path | None, by: str | None, note: str | None) -> None:
    """Resolve (close) an incident."""

    def _resolve() -> int:
        from runbook.commands import incidents_cmd

        for line in incidents_cmd.settle(inventory, incident_id, "resolved", by, note):
            click.echo(line)
        return 0

    run_command(_resolve)


@main.group()
def escalations() -> None:
    """Escalation over time."""


@escalations.command("tick")
@INVENTORY
def escalations_tick(inventory: Path | None) -> None:
    """Notify the escalation levels now due. Safe from cron every minute, even twice at once."""

    def _tick() -> int:
        from runbook.commands import incidents_cmd

        done = incidents_cmd.tick(inventory)
        for line in done:
            click.echo(line)
        click.echo(f"{len(done)} escalation step(s) done", err=True)
        return 0

    run_command(_tick)


@main.group()
def escalation() -> None:
    """Escalation policies."""


@escalation.command("show")
@click.argument("policy")
@INVENTORY
@click.option("--severity", help="Only this severity.")
def escalation_show(policy: str, inventory: Path | None, severity: str | None) -> None:
    """Print a policy's timeline: who is told at which minute."""

    def _show() -> int:
        from runbook.commands import incidents_cmd

        for line in incidents_cmd.show(inventory, policy, severity):
            click.echo(line)
        return 0

    run_command(_show)


@main.group()
def sandbox() -> None:
    """The embedded PostgreSQL under .runbook/ (the target `sandbox`)."""


def _project_root(inventory: Path | None) -> Path:
    from runbook.load import project

    found = inventory or project.find_inventory()
    return found.resolve().parent if found else Path.cwd()


@sandbox.command("up")
@INVENTORY
def sandbox_up(inventory: Path | None) -> None:
    """Start the sandbox (a running one is reused) and print its DSN."""

    def _up() -> int:
        from runbook.commands import sandbox_cmd

        click.echo(sandbox_cmd.up(_project_root(inventory)))
        return 0

    run_command(_up)


@sandbox.command("status")
@INVENTORY
@click.option("--dsn", "dsn_only", is_flag=True, help="Print only the DSN (exit 3 if not running).")
def sandbox_status(inventory: Path | None, dsn_only: bool) -> None:
    """Print the sandbox's state and DSN (psql "$(runbook sandbox status --dsn)")."""

    def _status() -> int:
        from runbook.commands import sandbox_cmd

        text, code = sandbox_cmd.status(_project_root(inventory), dsn_only)
        click.echo(text, err=code != 0 and dsn_only)  # never a message where a DSN is expected
        return code

    run_command(_status)


@sandbox.command("down")
@INVENTORY
def sandbox_down(inventory: Path | None) -> None:
    """Stop the sandbox."""

    def _down() -> int:
        from runbook.commands import sandbox_cmd

        click.echo(sandbox_cmd.down(_project_root(inventory)))
        return 0

    run_command(_down)


@sandbox.command("createdb")
@click.argument("name")
@INVENTORY
@click.option(
    "--from",
    "sql_file",
    type=click.Path(path_type=Path),
    help="Load this SQL file into it (the server's psql; the first error stops and undoes it).",
)
def sandbox_createdb(name: str, inventory: Path | None, sql_file: Path | None) -> None:
    """Make another database on the sandbox and print its DSN (for a target:
    dsn: {embedded: true, dbname: NAME})."""

    def _createdb() -> int:
        from runbook.pg import sandbox as sandbox_mod

        click.echo(sandbox_mod.createdb(_project_root(inventory), name, sql_file))
        return 0

    run_command(_createdb)


@sandbox.command("psql", context_settings={"ignore_unknown_options": True})
@click.argument("dbname", required=False)
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
@INVENTORY
def sandbox_psql(dbname: str | None, psql_args: tuple[str, ...], inventory: Path | None) -> None:
    """Open the sandbox's own psql on DBNAME (default: the sandbox database);
    arguments after it go to psql (runbook sandbox psql runbook_sandbox -c 'SELECT 1')."""

    def _psql() -> int:
        import os

        from runbook.pg import sandbox as sandbox_mod

        name: str | None = dbname
        extra = psql_args
        if dbname is not None and dbname.startswith("-"):  # no name: psql's own options
            name, extra = None, (dbname, *psql_args)
        argv = sandbox_mod.psql_argv(_project_root(inventory), name, extra)
        os.execv(argv[0], argv)  # psql takes the terminal over; it does not come back
        return 0  # pragma: no cover

    run_command(_psql)


@sandbox.command("reset")
@INVENTORY
def sandbox_reset(inventory: Path | None) -> None:
    """Drop the sandbox database and load it afresh."""

    def _reset() -> int:
        from runbook.commands import sandbox_cmd

        click.echo(sandbox_cmd.reset(_project_root(inventory)))
        return 0

    run_command(_reset)
