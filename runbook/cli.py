"""The `runbook` command line: parse options, call one function, return its exit code.

No logic lives here. Imports of the heavy parts happen inside the commands so
that `runbook --help` and a one-step run start fast.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from runbook import __version__, collector
from runbook.errors import ExitCode, RunbookError


def _skip_final_collection() -> None:
    """At exit, take every object out of the garbage collector's view.

    CPython ends with a full collection that scans every object of the
    process (60-100 ms after a run, and in a few runs of ten several hundred);
    what it could free the operating system takes back whole anyway.
    """
    gc.freeze()


atexit.register(_skip_final_collection)

FORMATS = click.Choice(["text", "json"])
INVENTORY = click.option(
    "-i",
    "--inventory",
    type=click.Path(path_type=Path),
    help="Inventory file (default: $RUNBOOK_INVENTORY, else the nearest inventory.yaml).",
)


@contextlib.contextmanager
def handle_errors() -> Iterator[None]:
    """The one place errors meet the user: print them, exit with their code."""
    try:
        yield
    except RunbookError as exc:
        for line in exc.lines():
            click.echo(line, err=True)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(int(ExitCode.INTERRUPTED))


def run_command(func: Callable[..., int], **kwargs: Any) -> None:
    with handle_errors(), collector.paused():
        code = func(**kwargs)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runbook")
def main() -> None:
    """Declarative runbooks for PostgreSQL: daily checks, escalations, rollbacks.

    \b
    Exit codes: 0 all gates passed; 1 halted by a failed gate; 2 invalid input
    (nothing ran); 3 a step errored; 130 interrupted.
    """


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


def _reporter_factory(fmt: str, quiet: bool, verbose: bool = False) -> Any:
    from runbook import report

    if fmt == "json":
        return report.SilentReporter
    if sys.stdout.isatty():
        from rich.console import Console

        console = Console()
        return lambda: report.RichReporter(console, quiet=quiet, verbose=verbose)
    return lambda: report.PlainReporter(sys.stdout, quiet=quiet, verbose=verbose)


def _prompter() -> Any:
    if not sys.stdin.isatty():
        return None

    def ask(prompt: str, details: str | None) -> bool:
        if details:
            click.echo(details)
        return click.confirm(prompt, default=False)

    return ask


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
@click.option("-q", "--quiet", is_flag=True, help="Show only failures and the summary.")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Show what each step sent (SQL, command) and the PostgreSQL client programs it used.",
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
    fmt: str,
    junit: Path | None,
    exit_codes: str,
    quiet: bool,
    verbose: bool,
) -> None:
    """Run PLAYBOOK against its targets, step by step, and record it in the journal."""
    if check and rehearse:
        raise click.UsageError("--check and --rehearse are two different dry runs; choose one")

    def _run() -> int:
        from runbook import service

        request = service.RunSpec(
            playbook=playbook,
            inventory=inventory,
            targets=targets,
            extra=extra,
            tags=frozenset(t for t in tags.split(",") if t),
            skip_tags=frozenset(t for t in skip_tags.split(",") if t),
            check=check,
            rehearse=rehearse,
            yes=yes,
            exit_codes=exit_codes,
        )
        # Loading makes only long-lived objects: the collector waits until the steps begin.
        with collector.Quiet() as collecting:
            outcomes = service.run(
                request,
                _reporter_factory(fmt, quiet, verbose),
                _prompter(),
                _notifier(),
                on_loaded=collecting.steps_begin,
            )
        return _finish_runs(outcomes, request.exit_codes, fmt, junit)

    run_command(_run)


def _notifier() -> Any:
    from runbook.commands import notifications

    return notifications.notifier_for


def _finish_runs(outcomes: Any, exit_codes: str, fmt: str, junit: Path | None) -> int:
    from runbook import report, service

    code: int = service.exit_code(outcomes, exit_codes)
    if fmt == "json":
        click.echo(report.json_document(outcomes, code))
    if junit is not None:
        junit.write_bytes(report.junit(outcomes))
    if len(outcomes) > 1 and fmt != "json":
        click.echo("")
        for outcome in outcomes:
            click.echo(
                f"  {outcome.target:<20} {outcome.status.value:<12} exit {outcome.exit_code}  {outcome.run_id}"
            )
    return code


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

    def decide(step: dict[str, Any]) -> str | None:
        if choice is not None:
            return choice
        if not sys.stdin.isatty():
            return None
        click.echo(
            f"step {step['number']} {step['name']!r} of run {step['run_id']} was caught "
            "mid-flight and cannot be transactional: whether it took effect is unknown."
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
    fmt: str,
    junit: Path | None,
    quiet: bool,
    unknown: str | None,
) -> None:
    """Continue a halted, failed or interrupted run from its first unfinished step
    (or, if it stopped while undoing, continue the undo)."""

    def _resume() -> int:
        from runbook.commands import resume as resume_cmd

        outcomes = resume_cmd.resume(
            run_id,
            inventory,
            extra,
            force,
            yes,
            _reporter_factory(fmt, quiet),
            _prompter(),
            _notifier(),
            _decider(unknown),
        )
        return _finish_runs(outcomes, "default", fmt, junit)

    run_command(_resume)


@main.command()
@click.argument("run_id")
@INVENTORY
@EXTRA_AGAIN
@click.option("--force", is_flag=True, help="Roll back even if the playbook changed since the run.")
@click.option("--check", is_flag=True, help="Show the rollback steps with their SQL; run nothing.")
@UNKNOWN
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
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
    fmt: str,
    quiet: bool,
    unknown: str | None,
) -> None:
    """Undo what RUN_ID did: the rollback steps of its completed steps, newest first."""

    def _confirm(lines: list[str]) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            click.echo(
                "runbook rollback needs confirmation: pass --yes, or run it from a terminal",
                err=True,
            )
            return False
        click.echo("This undoes, newest first:")
        for line in lines:
            click.echo(f"  {line}")
        return click.confirm("Roll back?", default=False)

    def _rollback() -> int:
        from runbook.commands import resume as resume_cmd

        outcomes = resume_cmd.rollback(
            run_id,
            inventory,
            extra,
            force,
            check,
            _confirm,
            _reporter_factory(fmt, quiet),
            _prompter(),
            _decider(unknown),
        )
        return _finish_runs(outcomes, "default", fmt, None)

    run_command(_rollback)


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
        done = demo_cmd.run(prepared, _reporter_factory("rich", False))
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


from runbook import cli_ops  # noqa: E402  (registers the operating commands on `main`)

del cli_ops

if __name__ == "__main__":  # pragma: no cover
    main()
