"""`runbook report RUN_ID`: a run's report as Markdown, HTML or JSON.

Registered on the `runbook` group by importing this module (runbook.cli).
"""

from __future__ import annotations

from pathlib import Path

import click

from runbook.cli.main import INVENTORY, main, run_command, write_report


@main.command()
@click.argument("run_id")
@INVENTORY
@click.option(
    "--format", "fmt", type=click.Choice(["md", "html", "json"]), default="md", show_default=True
)
@click.option("--out", type=click.Path(path_type=Path), help="Write to this file.")
def report(run_id: str, inventory: Path | None, fmt: str, out: Path | None) -> None:
    """A run's report (RUN_ID or a unique prefix): its facts, its steps on a
    timeline, the incidents and notifications it made. HTML is one
    self-contained file (inline style and SVG, nothing fetched)."""

    def _report() -> int:
        from runbook.commands import report_cmd

        text = report_cmd.report(inventory, run_id, fmt)
        if out is None:
            click.echo(text, nl=False)
        else:
            write_report(out, text, "--out")
            click.echo(str(out))
        return 0

    run_command(_report)
