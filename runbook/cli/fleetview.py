"""How `runbook run` shows a group's targets running at once: piped, one
line per target as it ends, then a summary of a few lines."""

from __future__ import annotations

import io
import threading
from typing import Any

import click


class TargetLines:
    """A line per target as it ends; `held` keeps them (a monitoring plugin's
    first line is its verdict, so the rest waits)."""

    def __init__(self, held: io.StringIO | None = None) -> None:
        self.held = held
        self._lock = threading.Lock()  # lines come from the targets' threads

    def view(self) -> Any:
        from runbook import report
        from runbook.fleet.group import FleetView

        return FleetView(
            make_reporter=report.SilentReporter,
            begin=self.begin,
            started=self.started,
            ended=self.ended,
        )

    def begin(self, fleet: str, playbook: str, targets: list[str], forks: int) -> None:
        if self.held is None:
            click.echo(
                f"fleet run {fleet}: {playbook} on {len(targets)} target(s), {forks} at once"
            )

    def started(self, target: str) -> None:
        pass

    def ended(self, outcome: Any) -> None:
        from runbook.fleet.summary import target_line

        with self._lock:
            line = target_line(outcome)
            if self.held is not None:
                self.held.write(line + "\n")
            else:
                click.echo(line)
