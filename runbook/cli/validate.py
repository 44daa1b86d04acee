"""`runbook validate`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from runbook.cli.main import FORMATS, INVENTORY, main, run_command
from runbook.errors import ExitCode


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@INVENTORY
@click.option(
    "--format", "fmt", type=FORMATS, default="text", show_default=True, help="Output format."
)
def validate(paths: tuple[Path, ...], inventory: Path | None, fmt: str) -> None:
    """Check playbooks and inventories without connecting to anything.

    PATHS are files or folders (searched recursively for *.yaml); by default
    playbooks/ and inventory.yaml. Every problem is one line,
    path:line:col: $.json.path: message. Exit 2 if anything is invalid.
    """

    def _validate() -> int:
        from runbook.commands.validate import validate as do_validate

        report = do_validate(list(paths), inventory)
        if fmt == "json":
            click.echo(json.dumps([p.serialize() for p in report.problems], indent=2))
        else:
            for problem in report.problems:
                click.echo(problem.format())
            files = len(report.files)
            if report.problems:
                bad = len({p.path for p in report.problems})
                click.echo(
                    f"{len(report.problems)} problem(s) in {bad} file(s); {files} file(s) checked",
                    err=True,
                )
            else:
                click.echo(f"{files} file(s) valid", err=True)
        return int(ExitCode.INVALID_INPUT if report.problems else ExitCode.OK)

    run_command(_validate)
