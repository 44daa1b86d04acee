"""`runbook demo`: the morning constraint check on the embedded sandbox.

Starts the sandbox if needed (a running one is reused), loads the demo database
if missing, runs the bundled morning check — whose gates fail on faults planted
in the demo data — and returns what the incident and its notifications did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook import service
from runbook.commands import notifications
from runbook.engine import Reporter
from runbook.errors import UsageError
from runbook.load import project
from runbook.outcome import RunOutcome, RunStatus
from runbook.pg import embedded, sandbox

PLAYBOOK = Path("playbooks/constraint-monitoring/morning-check.yaml")


@dataclass
class Demo:
    root: Path
    inventory: Path
    dsn: str = ""
    started: bool = False
    outcomes: list[RunOutcome] = field(default_factory=list)
    notification_files: list[Path] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when the demo showed what it should: the gate failing on a planted fault."""
        ok = {RunStatus.OK, RunStatus.GATE_FAILED}
        return 0 if self.outcomes and all(o.status in ok for o in self.outcomes) else 3


def prepare(say: Callable[[str], None]) -> Demo:
    inventory = project.find_inventory()
    if inventory is None or not (inventory.parent / PLAYBOOK).is_file():
        raise UsageError(f"runbook demo runs from the runbook repository (no {PLAYBOOK} here)")
    root = inventory.parent
    demo = Demo(root, inventory)
    running = sandbox.status(root)
    say(
        "reusing the running sandbox PostgreSQL"
        if running
        else "starting the sandbox PostgreSQL under .runbook/sandbox (first time: a few seconds)"
    )
    server = sandbox.up(root)
    demo.started = running is None
    demo.dsn = server.database_dsn(embedded.DATABASE)
    return demo


def run(demo: Demo, make_reporter: Callable[[], Reporter]) -> Demo:
    request = service.RunSpec(
        playbook=demo.root / PLAYBOOK, targets=("sandbox",), inventory=demo.inventory
    )
    demo.outcomes = service.run(request, make_reporter, None, notifications.notifier_for)
    from runbook.commands import incidents_cmd

    demo.incidents = incidents_cmd.listing(demo.inventory, only_open=True)
    demo.notification_files = sorted((demo.root / ".runbook" / "notifications").glob("*.jsonl"))
    return demo
