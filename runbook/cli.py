"""The `runbook` command line: parse options, call one function, return its exit code.

No logic lives here. Imports of the heavy parts happen inside the commands so
that `runbook --help` and a one-step run start fast.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from runbook import __version__
from runbook.errors import ExitCode, RunbookError

FORMATS = click.Choice(["text", "json"])


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
    with handle_errors():
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
@click.option(
    "-i",
    "--inventory",
    type=click.Path(path_type=Path),
    help="Inventory file (default: nearest inventory.yaml).",
)
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


@main.command()
def demo() -> None:
    """Show runbook on the bundled playbooks (validation until the engine lands)."""

    def _demo() -> int:
        from runbook.commands.validate import validate as do_validate

        report = do_validate([], None)
        for problem in report.problems:
            click.echo(problem.format())
        click.echo(
            f"{len(report.files)} bundled file(s) checked, {len(report.problems)} problem(s)"
        )
        return int(ExitCode.INVALID_INPUT if report.problems else ExitCode.OK)

    run_command(_demo)


@main.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script: eval "$(runbook completion bash)"."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(main, {}, "runbook", "_RUNBOOK_COMPLETE").source())


if __name__ == "__main__":  # pragma: no cover
    main()
