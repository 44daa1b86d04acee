"""`runbook resume`, `rollback`: continue an earlier run, or undo what it did."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from runbook.cli import prompts
from runbook.cli.main import INVENTORY, main, run_command
from runbook.cli.runs import (
    BREAK_GLASS,
    CONFIRM_TARGET,
    approval_wait,
    ask,
    finish_runs,
    notifier,
    reporter_factory,
)
from runbook.journal.reconcile import statements_ended

if TYPE_CHECKING:
    from runbook.journal.records import StepRecord

# resume and rollback run an earlier run's playbook again: its -e values come
# from the journal, all but the secrets.
EXTRA_AGAIN = click.option(
    "-e",
    "--extra-vars",
    "extra",
    multiple=True,
    help="Variables again (secrets are not kept in the journal).",
)


UNKNOWN = click.option(
    "--unknown",
    type=click.Choice(["halt", "rerun", "skip"]),
    default=None,
    help="What to do with a step a crash caught mid-flight whose effect is unknown "
    "(autocommit SQL, shell, a writing request): rerun it, skip it (it took effect), or halt. "
    "Default: ask on a terminal, else the step's on_unknown, else halt.",
)


def _decider(choice: str | None) -> Any:
    """How resume decides a step whose outcome is unknown: --unknown, else ask a person."""

    def decide(step: StepRecord) -> str | None:
        if choice is not None:
            return choice
        if not sys.stdin.isatty():
            return None
        click.echo(
            f"step {step.number} {step.name!r} of run {step.run_id} was caught "
            "mid-flight and cannot be transactional: whether it took effect is unknown"
            f"{statements_ended(step.statements)}."
        )
        answer: str = click.prompt(
            "rerun it, skip it (it took effect), or halt?",
            type=click.Choice(["rerun", "skip", "halt"]),
            default="halt",
        )
        return answer

    return decide


@main.command()
@click.argument("run_id")
@INVENTORY
@EXTRA_AGAIN
@click.option(
    "--force",
    is_flag=True,
    help="Resume even if the playbook changed since the run (recorded in the journal).",
)
@UNKNOWN
@click.option("--yes", "-y", is_flag=True, help="Answer yes to confirm steps.")
@CONFIRM_TARGET
@BREAK_GLASS
@click.option(
    "--format", "fmt", type=click.Choice(["rich", "json"]), default="rich", show_default=True
)
@click.option("--junit", type=click.Path(path_type=Path))
@click.option("-q", "--quiet", is_flag=True)
def resume(
    run_id: str,
    inventory: Path | None,
    extra: tuple[str, ...],
    force: bool,
    yes: bool,
    confirm_targets: tuple[str, ...],
    break_glass: str | None,
    fmt: str,
    junit: Path | None,
    quiet: bool,
    unknown: str | None,
) -> None:
    """Continue a halted, failed or interrupted run (or one parked awaiting approval) from its first unfinished step
    (or, if it stopped while undoing, continue the undo)."""

    def _resume() -> int:
        from runbook.commands import resume as resume_cmd

        outcomes = resume_cmd.resume(
            run_id,
            inventory,
            extra,
            force,
            yes,
            reporter_factory(fmt, quiet),
            prompts.step_prompter(),
            notifier(),
            _decider(unknown),
            confirm_targets,
            ask(),
            approval_wait=approval_wait(),
            break_glass=break_glass,
        )
        return finish_runs(outcomes, "default", fmt, junit)

    run_command(_resume)


@main.command()
@click.argument("run_id")
@INVENTORY
@EXTRA_AGAIN
@click.option("--force", is_flag=True, help="Roll back even if the playbook changed since the run.")
@click.option("--check", is_flag=True, help="Show the rollback steps with their SQL; run nothing.")
@UNKNOWN
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@CONFIRM_TARGET
@click.option(
    "--format", "fmt", type=click.Choice(["rich", "json"]), default="rich", show_default=True
)
@click.option("-q", "--quiet", is_flag=True)
def rollback(
    run_id: str,
    inventory: Path | None,
    extra: tuple[str, ...],
    force: bool,
    check: bool,
    yes: bool,
    confirm_targets: tuple[str, ...],
    fmt: str,
    quiet: bool,
    unknown: str | None,
) -> None:
    """Undo what RUN_ID did: the rollback steps of its completed steps, newest first."""

    def _confirm(lines: list[str]) -> bool:
        if yes:
            return True
        if not prompts.attended():
            click.echo(
                "runbook rollback needs confirmation: pass --yes, or run it from a terminal",
                err=True,
            )
            return False
        click.echo("This undoes, newest first:")
        for line in lines:
            click.echo(f"  {line}")
        return prompts.yes_no("Roll back?")

    def _rollback() -> int:
        from runbook.commands import resume as resume_cmd

        outcomes = resume_cmd.rollback(
            run_id,
            inventory,
            extra,
            force,
            check,
            _confirm,
            reporter_factory(fmt, quiet),
            prompts.step_prompter(),
            _decider(unknown),
            confirm_targets,
            ask(),
        )
        return finish_runs(outcomes, "default", fmt, None)

    run_command(_rollback)
