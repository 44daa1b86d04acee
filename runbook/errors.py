"""One error base class, errors as data, and the exit codes.

Every problem with a file is a :class:`Problem` carrying where it is (file, line,
column, JSON path) and a code, in the manner of sqlfluff's violations. Exceptions
that reach the CLI are :class:`RunbookError` subclasses; the CLI's one handler
(`runbook.cli.handle_errors`) prints them and picks the exit code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class ExitCode(enum.IntEnum):
    """The documented exit codes (README, DESIGN.md)."""

    OK = 0
    GATE_FAILED = 1
    INVALID_INPUT = 2
    STEP_ERROR = 3
    REFUSED = 4  # a person said no, or no one who may say yes did
    WAITING = 5  # parked awaiting an approval: `runbook resume` continues it
    INTERRUPTED = 130


@dataclass(frozen=True, order=True)
class Position:
    """A 1-based line and column inside a file."""

    line: int
    col: int


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one input file, at one place."""

    path: str
    line: int
    col: int
    pointer: str
    message: str
    code: str = "invalid"

    def format(self) -> str:
        where = f"{self.path}:{self.line}:{self.col}"
        return (
            f"{where}: {self.pointer}: {self.message}"
            if self.pointer
            else f"{where}: {self.message}"
        )

    def serialize(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "pointer": self.pointer,
            "message": self.message,
            "code": self.code,
        }


class RunbookError(Exception):
    """Base of every error runbook reports to its user."""

    exit_code: ExitCode = ExitCode.STEP_ERROR

    def lines(self) -> list[str]:
        return [str(self)]


class InputError(RunbookError):
    """Invalid input: nothing ran, nothing connected."""

    exit_code = ExitCode.INVALID_INPUT


@dataclass
class InvalidFiles(InputError):
    """One or more files failed validation; carries every problem found."""

    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(p.format() for p in self.problems)

    def lines(self) -> list[str]:
        return [p.format() for p in self.problems]


class UsageError(InputError):
    """A command-line selection that makes no sense (unknown target, bad -e)."""


class TemplateError(InputError):
    """A template could not be rendered (undefined name, bad filter use)."""


class TargetError(RunbookError):
    """A target database could not be reached or used (exit 3)."""

    exit_code = ExitCode.STEP_ERROR


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, and what it left undone (said after "interrupted"): exit 130."""


class JournalError(RunbookError):
    """The journal could not be opened, read or written."""

    exit_code = ExitCode.STEP_ERROR


class SandboxError(RunbookError):
    """The embedded PostgreSQL could not be started or managed."""

    exit_code = ExitCode.STEP_ERROR


class Refused(RunbookError):
    """Not confirmed: a declined or missing confirmation, or no standing
    authorization for a run nobody attends. Nothing ran (exit 4)."""

    exit_code = ExitCode.REFUSED


class StepError(RunbookError):
    """A step could not do its work; the engine records it as failed."""

    def __init__(
        self,
        message: str,
        *,
        result: Any = None,
        sqlstate: str | None = None,
        mid_flight: bool = False,
    ) -> None:
        super().__init__(message)
        self.result = result
        self.sqlstate = sqlstate
        # Stopped while it may have been acting (a command killed at its
        # timeout, a request sent and never answered, a statement whose
        # connection runbook cut): a non-transactional step's effect is unknown.
        self.mid_flight = mid_flight


class AwaitingApproval(StepError):
    """The run needs an approval it does not have yet and nobody waits at a
    terminal: it stops there, parked (exit 5); `runbook resume` continues it."""


class Declined(StepError):
    """A person answered no to a `confirm` step: the run stops there (exit 4)."""
