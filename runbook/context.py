"""What an action sees while it runs one step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from runbook.clock import Clock
from runbook.model import Scale
from runbook.pg.db import Session
from runbook.pg.pgtools import TargetTools
from runbook.plan import PlannedStep


class Notifier(Protocol):
    """Notifications and incidents (runbook.alerts.notifier.Escalator implements it)."""

    def notify(
        self,
        channels: list[str],
        message: str,
        *,
        subject: str | None,
        severity: str | None,
        to: list[str],
    ) -> list[dict[str, Any]]: ...

    def recovered(self, keys: set[str]) -> None:
        """Resolve the open incidents of these (passed) gates' keys."""
        ...

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

    def finish(self, cut: str | None = None) -> list[dict[str, Any]]:
        """Wait for deliveries still going (at most the grace period; not at
        all if `cut` says why not); what the run's notifications did."""
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


class TargetFacts(dict[str, Any]):
    """`target` in templates: `name`, `description`, `tags`, and what the server
    says of itself, asked the first time a template reads it: `server_version`
    (server_version_num, 150018 for 15.18) and `server_major` (15). A playbook
    that never reads them does not connect for them."""

    def __init__(self, facts: dict[str, Any], server_version: Callable[[], int]) -> None:
        super().__init__(facts)
        self._server_version = server_version

    def __missing__(self, key: str) -> Any:
        if key == "server_version":
            value: Any = self._server_version()
        elif key == "server_major":
            value = self._server_version() // 10000
        else:
            raise KeyError(key)
        self[key] = value
        return value


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
    # The target's PostgreSQL client programs (pg_dump …), chosen by its server's version.
    client_tools: TargetTools | None = None
    # Secret values met while running (header values from the environment …).
    secrets: set[str] = field(default_factory=set)
    # Filled by actions for the journal and the report: what was sent.
    rendered: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    note: str = ""
    severity: str | None = None
    # An autocommit step runs its statements one at a time: how many it has, how
    # many ended (committed: they stay done), and whom to tell as each ends (the
    # journal, so that a crash between two leaves the count behind).
    statements: int = 0
    statements_done: int = 0
    on_statement: Callable[[int, int], None] | None = None
    # The inventory's severity scale: a templated severity is checked against it.
    scale: Scale = field(default_factory=Scale.default)

    @property
    def step(self) -> Any:
        return self.planned.step
