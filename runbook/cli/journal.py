"""`runbook journal …`: verify, checkpoint, export, keygen, upgrade, copy.

Registered on the `runbook` group by importing this module (runbook.cli); no logic here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from runbook.cli.main import INVENTORY, main, run_command
from runbook.errors import ExitCode

F = TypeVar("F", bound=Callable[..., Any])


@main.group()
def journal() -> None:
    """The journal of runs."""


def _file_option(flag: str, text: str) -> Callable[[F], F]:
    """`--name FILE`, given to the command as `name_file`."""
    dest = flag.lstrip("-").split("-")[0] + "_file"
    return click.option(flag, dest, type=click.Path(path_type=Path), help=text)


@journal.command("verify")
@INVENTORY
@_file_option("--checkpoint", "A checkpoint kept outside the journal (`journal checkpoint`).")
@_file_option(
    "--public-key", "The public key that checks signatures (default: the configured key's)."
)
@_file_option("--export", "Check this export (`journal export`) instead of the journal.")
@_file_option(
    "--evidence",
    "Check this evidence file (`journal export --run|--drill|--since`) on its own, offline.",
)
def journal_verify(
    inventory: Path | None,
    checkpoint_file: Path | None,
    public_file: Path | None,
    export_file: Path | None,
    evidence_file: Path | None,
) -> None:
    """Check the chain, the tables and checkpoints; one problem per line (exit 1 if any)."""

    def _verify() -> int:
        from runbook.commands import evidence, journal_cmd

        if evidence_file is not None:
            report = evidence.verify(evidence_file, public_file)
        else:
            report = journal_cmd.verify(inventory, checkpoint_file, public_file, export_file)
        for problem in report.problems:
            click.echo(problem)
        # The result is the command's output (stdout), not a diagnostic.
        for note in report.notes:
            click.echo(f"note: {note}")
        verdict = "the journal is damaged" if report.problems else "the journal holds"
        click.echo(f"{verdict}: {report.count} event(s) checked; {len(report.problems)} problem(s)")
        return int(ExitCode.GATE_FAILED) if report.problems else 0

    run_command(_verify)


@journal.command("checkpoint")
@INVENTORY
@click.option(
    "--latest", is_flag=True, help="The last checkpoint recorded in the journal (needs no key)."
)
def journal_checkpoint(inventory: Path | None, latest: bool) -> None:
    """Print a checkpoint of the journal as JSON, to keep somewhere else.

    Signed, and recorded in the journal too, when a key is configured
    (journal.key_file or $RUNBOOK_JOURNAL_KEY_FILE); unsigned otherwise.
    """

    def _checkpoint() -> int:
        from runbook.commands import journal_cmd

        click.echo(json.dumps(journal_cmd.checkpoint_now(inventory, latest), indent=2))
        return 0

    run_command(_checkpoint)


@journal.command("export")
@click.argument("run_ids", nargs=-1)
@INVENTORY
@_file_option("--checkpoint", "Export up to this checkpoint's count, so it verifies against it.")
@click.option("--run", "runs", multiple=True, metavar="ID", help="Evidence: this run (repeatable).")
@click.option("--drill", metavar="ID", help="Evidence: a drill, its runs and its records.")
@click.option("--since", help="Evidence: every run ended within this long (30m, 12h, 30d, 2w).")
def journal_export(
    run_ids: tuple[str, ...],
    inventory: Path | None,
    checkpoint_file: Path | None,
    runs: tuple[str, ...],
    drill: str | None,
    since: str | None,
) -> None:
    """Print runs' events as JSON, the other events only as digests: checkable
    against a checkpoint (verify --export) without the rest of the journal.

    \b
    With --run, --drill or --since: evidence, as JSON lines carrying a checkpoint
    signed now (the journal's key is needed) and its public key; check a copy
    offline with `runbook journal verify --evidence FILE [--public-key KEY]`."""

    def _export() -> int:
        from runbook.commands import evidence, journal_cmd

        if runs or drill or since:
            if run_ids:
                raise click.UsageError("give runs as --run ID with --drill or --since")
            for line in evidence.export(inventory, runs, drill, since):
                click.echo(line)
            return 0
        if not run_ids:
            raise click.UsageError("give RUN_IDS, or --run, --drill or --since for evidence")
        doc = journal_cmd.export(inventory, list(run_ids), checkpoint_file)
        click.echo(json.dumps(doc, indent=1))
        return 0

    run_command(_export)


@journal.command("keygen")
@INVENTORY
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="The private key file (default: the configured key_file); FILE.pub gets the public key.",
)
def journal_keygen(inventory: Path | None, out: Path | None) -> None:
    """Make an Ed25519 key that signs the journal's checkpoints; print the public key."""

    def _keygen() -> int:
        from runbook.commands import journal_cmd

        private, public, pem = journal_cmd.keygen(inventory, out)
        click.echo(pem, nl=False)
        click.echo(
            f"private key: {private} (mode 600; keep it out of the journal's reach); "
            f"public key: {public}",
            err=True,
        )
        return 0

    run_command(_keygen)


@journal.command("upgrade")
@INVENTORY
def journal_upgrade(inventory: Path | None) -> None:
    """Create the PostgreSQL journal's schema, or bring it up to date (runs do it on first use)."""

    def _upgrade() -> int:
        from runbook.commands import journal_cmd

        where, applied, version = journal_cmd.upgrade(inventory)
        done = f"applied migration(s) {', '.join(map(str, applied))}" if applied else "up to date"
        click.echo(f"journal {where}: schema version {version} ({done})")
        return 0

    run_command(_upgrade)


@journal.command("copy")
@INVENTORY
@click.option(
    "--to",
    "dsn",
    required=True,
    help="The PostgreSQL journal to copy into (a DSN, or 'embedded').",
)
@click.option("--schema", default="runbook", show_default=True, help="Its schema.")
def journal_copy(inventory: Path | None, dsn: str, schema: str) -> None:
    """Copy this SQLite journal into a PostgreSQL one, then verify the copy.

    Runs, steps, incidents, deliveries and attempts are copied with their
    events, re-chained there; what is already there is not copied twice."""

    def _copy() -> int:
        from runbook.commands import journal_cmd

        report = journal_cmd.copy(inventory, dsn, schema)
        click.echo(report.summary)
        for problem in report.problems:
            click.echo(problem)
        return int(ExitCode.GATE_FAILED) if report.problems else 0

    run_command(_copy)
