"""A drill's scorecard: its record, its runs and its notes as one report
document (runbook.runreport), rendered as text, JSON, Markdown or HTML.

The timeline starts when the injects ended (the objectives' clock): the
procedure's steps and then the recovery's, each step with its target.
"""

from __future__ import annotations

from typing import Any

from runbook.journal.records import DrillNoteRecord, DrillRecord, RunRecord
from runbook.runreport import render as renderer
from runbook.runreport.document import (
    Answer,
    CorrectiveAction,
    Document,
    Finding,
    Item,
    Objective,
    Participant,
    Signoff,
    items_of,
)


def build(
    drill: DrillRecord, notes: list[DrillNoteRecord], runs: dict[str, RunRecord | None]
) -> Document:
    results = drill.objective_results or {}
    origin = drill.inject_at or drill.started_at
    targets = {s["name"]: float(s["target_s"]) for s in results.get("steps", [])}
    items: list[Item] = []
    for role in ("procedure", "recovery"):
        run = runs.get(role)
        if run is not None:
            items += items_of(run, origin, targets if role == "procedure" else None, role)
    inject = runs.get("inject")
    facts: dict[str, Any] = {
        "drill": drill.id,
        "playbook": f"{drill.playbook} ({drill.playbook_path})",
        "rehearses": drill.exercise,
        "target copied": drill.target,
        "copy": f"{drill.copy_db} ({drill.copy_method}){' kept' if drill.kept else ', dropped'}",
        "run by": f"{drill.operator} (OS user {drill.os_user}) on {drill.host}",
        "started": drill.started_at,
        "injects ended": drill.inject_at,
        "ended": drill.ended_at,
        "status": drill.status,
        "severity": results.get("severity"),
        "RPO": f"{drill.rpo_s:g} s" if drill.rpo_s is not None else None,
        "runs": ", ".join(f"{r['role']} {r['run_id']}" for r in drill.run_ids or []),
        "injects": f"{len(inject.steps or [])} step(s), {inject.status.value}" if inject else None,
        "reason": drill.reason,
    }
    return Document(
        title=f"Drill {drill.id}: {drill.exercise} on a copy of {drill.target}",
        kind="drill",
        facts=facts,
        items=tuple(items),
        objectives=tuple(
            Objective(o["name"], o.get("target_s"), o.get("actual_s"), o["status"])
            for o in results.get("objectives", [])
        ),
        participants=tuple(Participant(p["name"], p.get("role")) for p in drill.participants or ()),
        answers=tuple(Answer(**a) for a in results.get("answers", [])),
        findings=tuple(Finding(n.text, n.by, n.at) for n in notes if n.kind == "finding"),
        actions=tuple(
            CorrectiveAction(n.text, n.owner, n.due, None, n.by, n.at)
            for n in notes
            if n.kind == "action"
        ),
        signoffs=tuple(Signoff(n.by, n.at, n.text) for n in notes if n.kind == "signoff"),
        notes=(
            "Times are from the end of the injects. A step's dashed outline ends at its target.",
        ),
    )


def render(document: Document, fmt: str) -> str:
    if fmt == "text":
        return _text(document)
    return renderer.render(document, fmt)


def _text(doc: Document) -> str:
    lines = [doc.title]
    lines += [f"  {k}: {v}" for k, v in doc.facts.items() if v not in (None, "")]
    for o in doc.objectives:
        target = "-" if o.target_s is None else f"{o.target_s:g} s"
        actual = "-" if o.actual_s is None else f"{o.actual_s:g} s"
        lines.append(f"  {o.status.upper():<12} {o.name}: {actual} (target {target})")
    for item in doc.items:
        if item.target_s is not None:
            took = "-" if item.duration_s is None else f"{item.duration_s:g} s"
            lines.append(
                f"  {(item.verdict or '').upper():<12} step {item.number} {item.name}: {took} "
                f"(target {item.target_s:g} s)"
            )
    lines += [f"  finding: {f.text} ({f.by}, {f.at})" for f in doc.findings]
    for a in doc.actions:
        extra = f" — {a.owner}, due {a.due}" if a.owner else ""
        lines.append(f"  action: {a.text}{extra} ({a.by}, {a.at})")
    lines += [f"  signed off: {s.text} ({s.by}, {s.at})" for s in doc.signoffs]
    return "\n".join(lines) + "\n"
