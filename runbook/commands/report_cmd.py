"""`runbook report RUN_ID`: one run as a report document, rendered."""

from __future__ import annotations

from pathlib import Path

from runbook.commands.history import show
from runbook.runreport import render
from runbook.runreport.document import from_run


def report(inventory: Path | None, run_id: str, fmt: str) -> str:
    return render.render(from_run(show(inventory, run_id)), fmt)
