"""The `runbook` group, the shared options, and the one place errors meet the user.

No logic lives in the CLI. Imports of the heavy parts happen inside the
commands so that `runbook --help` and a one-step run start fast.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from runbook import __version__
from runbook.cli import collector
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
    except (KeyboardInterrupt, click.exceptions.Abort):
        # click.prompt turns Ctrl-C at a question into Abort: still an interruption.
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
    (nothing ran); 3 a step errored; 4 refused (not confirmed); 130 interrupted.
    """
