"""What an action sees while it runs one step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from runbook.clock import Clock
from runbook.db import Session
from runbook.plan import PlannedStep


class Notifier(Protocol):
    """Notifications and incidents (runbook.notifier.Escalator implements it)."""

    def notify(
        self,
        channels: list[str],
        message: str,
        *,
        subject: str | None,
        severity: str | None,
        to: list[str],
    ) -> list[dict[str, Any]]: ...

    def escalate(
        self,
        key: str,
        severity: str,
        message: str,
        *,
        policy: str | None,
        gate: str,
        explicit: bool = True,
    ) -> dict[str, Any]:
        """Open or update the incident `key`; gate failures (explicit=False) only
        at or above the threshold, and without raising: a failure to open the
        incident is recorded among the run's notifications instead."""
        ...

    def finish(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Wait for deliveries still going; what the run's notifications did."""
        ...


Prompter = Callable[[str, str | None], bool]


@dataclass
class RunInfo:
    id: str
    mode: str
    playbook: str
    playbook_kind: str
    target: str
    operator: str
    check: bool = False
    rehearse: bool = False


@dataclass
class StepContext:
    planned: PlannedStep
    scope: dict[str, Any]
    session: Session
    run: RunInfo
    root: Path
    timeout: float
    lock_timeout: float | None
    clock: Clock
    assume_yes: bool = False
    prompter: Prompter | None = None
    notifier: Notifier | None = None
    # libpq environment of the target (PGHOST …) for commands like pg_dump.
    session_env: dict[str, str] = field(default_factory=dict)
    # Secret values met while running (header values from the environment …).
    secrets: set[str] = field(default_factory=set)
    # Filled by actions for the journal and the report: what was sent.
    rendered: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    note: str = ""
    severity: str | None = None

    @property
    def step(self) -> Any:
        return self.planned.step
