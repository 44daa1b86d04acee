"""A drill's scorecard: the drill's record, its runs and its notes as one
document, rendered as text or JSON (Markdown and HTML by runbook.runreport)."""

from __future__ import annotations

import json
from typing import Any

from runbook.journal.records import DrillNoteRecord, DrillRecord, RunRecord


def build(
    drill: DrillRecord, notes: list[DrillNoteRecord], runs: dict[str, RunRecord | None]
) -> dict[str, Any]:
    results = drill.objective_results or {}
    return {
        "format": 1,
        "drill": drill.as_dict(),
        "objectives": results.get("objectives", []),
        "steps": results.get("steps", []),
        "answers": results.get("answers", []),
        "runs": {role: run.as_dict() if run else None for role, run in runs.items()},
        "findings": [n.as_dict() for n in notes if n.kind == "finding"],
        "actions": [n.as_dict() for n in notes if n.kind == "action"],
        "signoffs": [n.as_dict() for n in notes if n.kind == "signoff"],
    }


def render(document: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(document, indent=2, default=str) + "\n"
    drill = document["drill"]
    lines = [f"drill {drill['id']}: {drill['exercise']} on {drill['target']} — {drill['status']}"]
    for o in document["objectives"] + document["steps"]:
        lines.append(f"  {o['status']:<12} {o['name']}: {o['actual_s']} s (target {o['target_s']})")
    return "\n".join(lines) + "\n"
