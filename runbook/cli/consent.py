"""`runbook authorize`: standing authorizations for runs nobody attends."""

from __future__ import annotations

import json
from pathlib import Path

import click

from runbook.cli.main import FORMATS, INVENTORY, main, run_command


@main.command()
@click.argument("playbook", type=click.Path(path_type=Path), required=False)
@click.option("-t", "--target", "targets", multiple=True, help="Target or group (repeatable).")
@INVENTORY
@click.option("--reason", help="Why (recorded in the journal).")
@click.option("--revoke", is_flag=True, help="Withdraw the authorizations instead.")
@click.option("--list", "show", is_flag=True, help="List authorizations and whether each holds.")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
def authorize(
    playbook: Path | None,
    targets: tuple[str, ...],
    inventory: Path | None,
    reason: str | None,
    revoke: bool,
    show: bool,
    fmt: str,
) -> None:
    """Authorize PLAYBOOK on protected targets for runs nobody attends (schedules,
    queued runs). Bound to the playbook's sha256 with its includes and SQL
    files: any change voids it. Who authorized is journaled."""

    def _authorize() -> int:
        from runbook.commands import authorize as cmd

        if show:
            rows = cmd.listing(inventory, playbook)
            if fmt == "json":
                click.echo(json.dumps(rows, indent=2, default=str))
                return 0
            if not rows:
                click.echo("no authorizations recorded", err=True)
            for r in rows:
                click.echo(
                    f"{r['id']}  {r['playbook']:<28} {r['target']:<12} {r['state']:<20} "
                    f"by {r['granted_by']} at {r['granted_at']}"
                    + (f"; revoked by {r['revoked_by']}" if r["revoked_by"] else "")
                )
            return 0
        if playbook is None:
            raise click.UsageError("name the PLAYBOOK (or --list)")
        if revoke:
            ids = cmd.revoke(playbook, inventory, targets, reason)
            click.echo(
                f"revoked {len(ids)} authorization(s)" + (f": {', '.join(ids)}" if ids else "")
            )
            return 0
        for granted in cmd.grant(playbook, inventory, targets, reason):
            note = "" if granted.needed else " (not needed: the target is not protected)"
            click.echo(f"authorized on {granted.target}: {granted.id}{note}")
        return 0

    run_command(_authorize)


@main.command()
@INVENTORY
@click.option("--all", "everything", is_flag=True, help="Decided requests too.")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
def approvals(inventory: Path | None, everything: bool, fmt: str) -> None:
    """Runs waiting for approval (four eyes), newest first."""

    def _list() -> int:
        from runbook.commands import approvals_cmd

        rows = approvals_cmd.listing(inventory, everything)
        if fmt == "json":
            click.echo(json.dumps(rows, indent=2))
        elif not rows:
            click.echo("no approvals waiting", err=True)
        for line in approvals_cmd.render(rows) if fmt == "text" else ():
            click.echo(line)
        return 0

    run_command(_list)


@main.command()
@click.argument("run_id")
@INVENTORY
@click.option("--comment", help="What the approval says (journaled).")
@click.option(
    "--sign",
    "key",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Sign it with this SSH private key, checked against approvers.allowed_signers.",
)
def approve(run_id: str, inventory: Path | None, comment: str | None, key: Path | None) -> None:
    """Approve RUN_ID's request, as the operating-system user running this."""

    def _approve() -> int:
        from runbook.commands import approvals_cmd

        click.echo(approvals_cmd.decide(inventory, run_id, "approve", comment, key))
        return 0

    run_command(_approve)


@main.command()
@click.argument("run_id")
@INVENTORY
@click.option("--reason", required=True, help="Why (journaled with your name).")
def deny(run_id: str, inventory: Path | None, reason: str) -> None:
    """Deny RUN_ID's request: the run ends refused (exit 4)."""

    def _deny() -> int:
        from runbook.commands import approvals_cmd

        click.echo(approvals_cmd.decide(inventory, run_id, "deny", reason))
        return 0

    run_command(_deny)
