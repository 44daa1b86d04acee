"""The `runbook` group, the shared options, and the one place errors meet the user.

No logic lives in the CLI. Imports of the heavy parts happen inside the
commands so that `runbook --help` and a one-step run start fast.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import io
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from runbook import __version__
from runbook.cli import collector
from runbook.errors import ExitCode, Interrupted, RunbookError


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
def handle_errors(nagios: bool = False, plugin: bool = False) -> Iterator[None]:
    """The one place errors meet the user: print them, exit with their code.
    With Nagios exit codes whatever kept the check from running is UNKNOWN (3),
    an unforeseen error too; as a plugin (`plugin`: text output) it says so on
    the first line of stdout."""
    try:
        yield
    except RunbookError as exc:
        for line in exc.lines():
            click.echo(line, err=True)
        if nagios:
            _unknown(str(exc), plugin)
        sys.exit(int(exc.exit_code))
    except (KeyboardInterrupt, click.exceptions.Abort) as exc:
        # click.prompt turns Ctrl-C at a question into Abort: still an interruption.
        left = str(exc) if isinstance(exc, Interrupted) else ""
        click.echo(f"interrupted: {left}" if left else "interrupted", err=True)
        if nagios:
            _unknown("interrupted", plugin)
        sys.exit(int(ExitCode.INTERRUPTED))
    except Exception as exc:
        if not nagios:
            raise
        import traceback

        traceback.print_exc()  # stderr: for whoever reads the plugin's log
        _unknown(f"internal error: {type(exc).__name__}: {exc}", plugin)


def _unknown(message: str, plugin: bool) -> None:
    if plugin:
        from runbook.nagios import unknown_line

        click.echo(unknown_line(message))
    sys.exit(3)


def run_command(
    func: Callable[..., int], nagios: bool = False, plugin: bool = False, **kwargs: Any
) -> None:
    with handle_errors(nagios, plugin), collector.paused():
        code = func(**kwargs)
    sys.exit(code)


def write_report(path: Path, data: bytes | str, option: str = "--junit") -> None:
    """A report file (--junit, --out): one that cannot be written is exit 2, not a traceback."""
    from runbook.errors import UsageError

    try:
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{option} {path}: {exc.strerror or exc}") from None


def quiet_library_warnings() -> None:
    """psycopg logs, as warnings, the errors it ignores while letting go of a
    lost connection ("error ignored terminating <psycopg.Pipeline [BAD]>: the
    connection is lost"); with nothing set up to take them, Python prints them
    bare on stderr, beside runbook's own message for the same failure (or
    none at all: the journal's append that lost it may be made again)."""
    psycopg_log = logging.getLogger("psycopg")
    if not any(isinstance(h, logging.NullHandler) for h in psycopg_log.handlers):
        psycopg_log.addHandler(logging.NullHandler())


def tolerate_any_terminal() -> None:
    """A terminal or pipe that cannot show a character gets an escape for it,
    not a UnicodeEncodeError mid-run (a C locale, a cron mail)."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors="backslashreplace")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runbook")
def main() -> None:
    """Declarative runbooks for PostgreSQL: daily checks, escalations, rollbacks.

    \b
    Exit codes: 0 all gates passed; 1 halted by a failed gate; 2 invalid input
    (nothing ran); 3 a step errored; 4 refused (not confirmed, not approved);
    5 parked awaiting an approval; 130 interrupted.
    """
    tolerate_any_terminal()
    quiet_library_warnings()
