"""`runbook demo` and `runbook completion`."""

from __future__ import annotations

import click

from runbook.cli.main import main, run_command
from runbook.cli.runs import reporter_factory


@main.command()
def demo() -> None:
    """The demo: the morning constraint check on runbook's own PostgreSQL.

    Starts the sandbox (or reuses it), loads the demo database, runs
    playbooks/constraint-monitoring/morning-check.yaml, and shows the gate that
    fails on a planted fault, the incident it opens and the notifications sent
    (to files under .runbook/notifications/: nothing leaves the machine).
    """

    def _demo() -> int:
        from runbook.commands import demo_cmd, incidents_cmd

        prepared = demo_cmd.prepare(lambda text: click.echo(text, err=True))
        click.echo(f"sandbox: {prepared.dsn}", err=True)
        done = demo_cmd.run(prepared, reporter_factory("rich", False))
        click.echo("")
        click.echo("Open incidents (runbook incidents):")
        for row in done.incidents:
            for line in incidents_cmd.describe(row):
                click.echo(f"  {line}")
        for path in done.notification_files:
            lines = path.read_text().splitlines()
            click.echo(f"{len(lines)} notification(s) in {path.relative_to(done.root)}")
        click.echo("")
        click.echo(
            "Try next: runbook history | runbook show <run id> | runbook escalation show constraint-alerts"
        )
        click.echo(
            "          runbook ack <incident> | runbook run playbooks/emergency-rollback/critical-emergency-rollback.yaml --rehearse"
        )
        return done.exit_code

    run_command(_demo)


@main.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script: eval "$(runbook completion bash)"."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(main, {}, "runbook", "_RUNBOOK_COMPLETE").source())
