"""The `runbook` command line: one module per command family, no logic.

`main` is the click group (runbook.cli.main); importing the command modules
registers their commands on it.
"""

from runbook.cli import (
    consent,
    drill,
    journal,
    misc,
    ops,
    queue,
    recovery,
    reports,
    runs,
    schedule,
    validate,
)
from runbook.cli.main import main

__all__ = [
    "consent",
    "drill",
    "journal",
    "main",
    "misc",
    "ops",
    "queue",
    "recovery",
    "reports",
    "runs",
    "schedule",
    "validate",
]
