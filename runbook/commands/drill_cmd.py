"""`runbook drill run | list | show | note | signoff`."""

from __future__ import annotations

import datetime as dt
import statistics
import uuid
from pathlib import Path
from typing import Any

from runbook.approval import os_user
from runbook.clock import Clock, iso
from runbook.errors import Refused, UsageError
from runbook.journal.records import DrillNoteRecord, DrillRecord
from runbook.journal.store import JournalStore
from runbook.service import load_inventory, open_journal


def participants(given: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """`--participant NAME[:ROLE]` items as (name, role)."""
    out = []
    for item in given:
        name, _, role = item.partition(":")
        if not name.strip():
            raise UsageError(f"--participant {item!r}: give NAME or NAME:ROLE")
        out.append((name.strip(), role.strip() or "participant"))
    return tuple(out)


def _journal(inventory: Path | None) -> JournalStore:
    """The journal, its dead drills (killed: their copies dropped) marked first."""
    from runbook.drill.reconcile import dead_drills

    found = load_inventory(inventory, Path.cwd())
    journal = open_journal(found)
    dead_drills(journal, found, Clock.from_environment())
    return journal


def find(journal: JournalStore, drill_id: str) -> DrillRecord:
    found = journal.drill(drill_id)
    if found is None:
        raise UsageError(f"no drill {drill_id!r} in the journal (or the prefix is ambiguous)")
    return found


def show(
    inventory: Path | None, drill_id: str
) -> tuple[DrillRecord, list[DrillNoteRecord], dict[str, Any]]:
    """A drill, its notes, and its runs (by role) as the journal has them."""
    journal = _journal(inventory)
    try:
        drill = find(journal, drill_id)
        notes = journal.drill_notes(drill.id)
        runs = {r["role"]: journal.run(r["run_id"]) for r in drill.run_ids or []}
    finally:
        journal.close()
    return drill, notes, runs


def note(
    inventory: Path | None,
    drill_id: str,
    finding: str | None,
    action: str | None,
    owner: str | None,
    due: str | None,
) -> str:
    """Record a finding or a corrective action (with its owner and due date)."""
    if (finding is None) == (action is None):
        raise UsageError("give --finding TEXT or --action TEXT (with --owner and --due)")
    if action is not None and (not owner or not due):
        raise UsageError("a corrective action needs --owner and --due (YYYY-MM-DD)")
    if due is not None:
        try:
            dt.date.fromisoformat(due)
        except ValueError:
            raise UsageError(f"--due {due!r}: give a date, YYYY-MM-DD") from None
    kind, text = ("finding", finding) if finding is not None else ("action", action)
    assert text is not None
    return _add(inventory, drill_id, kind, text, owner, due)


def signoff(inventory: Path | None, drill_id: str, comment: str | None) -> str:
    """Sign the drill off: refused to whoever ran it (as the operating system knows them)."""
    return _add(inventory, drill_id, "signoff", comment or "signed off", None, None)


def _add(
    inventory: Path | None, drill_id: str, kind: str, text: str, owner: str | None, due: str | None
) -> str:
    journal = _journal(inventory)
    try:
        drill = find(journal, drill_id)
        who = os_user()
        if kind == "signoff":
            if who == drill.os_user:
                raise Refused(
                    f"drill {drill.id} was run by {who}: someone else signs it off (four eyes)"
                )
            if drill.ended_at is None:
                raise UsageError(f"drill {drill.id} has not ended: nothing to sign off yet")
        at = iso(Clock.from_environment().now())
        row = {
            "id": uuid.uuid4().hex[:12],
            "drill_id": drill.id,
            "kind": kind,
            "text": text,
            "owner": owner,
            "due": due,
            "by": who,
            "at": at,
        }
        journal.append(
            [(at, None, f"drill.{kind}", {"table": "drill_notes", "op": "insert", "row": row})]
        )
    finally:
        journal.close()
    said = {"finding": "finding recorded", "action": "corrective action recorded",
            "signoff": "signed off"}[kind]  # fmt: skip
    return f"drill {drill.id}: {said} by {who}"


def listing(inventory: Path | None, playbook: str | None, limit: int) -> list[dict[str, Any]]:
    """Drills, newest first, each with its time to recover and the trend of its
    playbook's earlier drills (the mean of the ones before it)."""
    journal = _journal(inventory)
    try:
        # The playbook's drills found by the query, not among the latest `limit`.
        drills = journal.drills(limit=limit, named=playbook or None)
        signed = {
            d.id: [n for n in journal.drill_notes(d.id) if n.kind == "signoff"] for d in drills
        }
    finally:
        journal.close()
    rows = []
    for i, d in enumerate(drills):
        recover = recovered(d)
        earlier = [recovered(e) for e in drills[i + 1 :] if e.playbook_path == d.playbook_path]
        known = [e for e in earlier if e is not None]
        rows.append(
            {
                "id": d.id,
                "playbook": d.playbook,
                "exercise": d.exercise,
                "target": d.target,
                "started_at": d.started_at,
                "status": d.status,
                "time_to_recover_s": recover,
                "trend": trend(recover, known),
                "signed_off_by": [n.by for n in signed.get(d.id, [])],
            }
        )
    return rows


def recovered(drill: DrillRecord) -> float | None:
    for objective in (drill.objective_results or {}).get("objectives", []):
        if objective["name"] == "time to recover":
            value = objective.get("actual_s")
            return float(value) if value is not None else None
    return None


def trend(value: float | None, earlier: list[float]) -> str:
    """Against the mean of the playbook's earlier drills: faster, slower, about the same."""
    if value is None:
        return "not recovered"
    if not earlier:
        return "first"
    mean = statistics.fmean(earlier)
    if mean == 0:
        return "same"
    change = (value - mean) / mean
    if abs(change) < 0.05:
        return "same (±5 %)"
    word = "faster" if change < 0 else "slower"
    return f"{word} ({abs(change) * 100:.0f} % vs {len(earlier)} earlier)"


def summary(drill: DrillRecord) -> list[str]:
    """What `drill run` prints at its end."""
    results = drill.objective_results or {}
    lines = [
        "",
        f"drill {drill.id}: {drill.exercise} on a copy of {drill.target} "
        f"({drill.copy_method}) — {drill.status}",
    ]
    if drill.reason:
        lines.append(f"  {drill.reason}")
    for o in results.get("objectives", []) + results.get("steps", []):
        lines.append(f"  {_objective_line(o)}")
    if drill.rpo_s is not None:
        lines.append(f"  RPO: the copy's newest heartbeat was {_duration(drill.rpo_s)} old")
    return lines


def _objective_line(o: dict[str, Any]) -> str:
    target = _duration(o["target_s"]) if o.get("target_s") is not None else "-"
    actual = _duration(o["actual_s"]) if o.get("actual_s") is not None else "-"
    name = o["name"] if "number" not in o else f"step {o['number']} {o['name']}"
    return f"{o['status'].upper():<12} {name:<40} actual {actual:>8}  target {target}"


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds >= 60:
        return f"{seconds / 60:.1f}m"
    if seconds >= 10:
        return f"{seconds:.1f}s"
    if seconds >= 1:
        return f"{seconds:.2f}s"
    return f"{seconds * 1000:.0f}ms"  # a step's target of 40 ms is not "0.0s"


def render_listing(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for r in rows:
        recover = _duration(r["time_to_recover_s"]) if r["time_to_recover_s"] is not None else "-"
        signed = ", ".join(r["signed_off_by"]) or "not signed off"
        out.append(
            f"{r['id']}  {r['started_at'][:16]}  {r['playbook']:<32} {r['target']:<10} "
            f"{r['status']:<11} recover {recover:>7}  {r['trend']}  ({signed})"
        )
    return out


def scorecard(inventory: Path | None, drill_id: str, fmt: str) -> str:
    from runbook.drill import scorecard as card

    drill, notes, runs = show(inventory, drill_id)
    return card.render(card.build(drill, notes, runs), fmt)


def write_scorecards(inventory: Path | None, drill_id: str) -> list[Path]:
    """The scorecard as JSON, Markdown and HTML in .runbook/drills/ID/ (mode 700)."""
    from runbook.drill import scorecard as card

    found = load_inventory(inventory, Path.cwd())
    drill, notes, runs = show(inventory, drill_id)
    document = card.build(drill, notes, runs)
    folder = found.root / ".runbook" / "drills" / drill.id
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    written = []
    for fmt, suffix in (("json", "json"), ("md", "md"), ("html", "html")):
        path = folder / f"scorecard.{suffix}"
        path.write_text(card.render(document, fmt))
        written.append(path)
    return written
