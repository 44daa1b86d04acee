"""A report as data: what `runbook report` and a drill's scorecard render.

One document type for both: a run's report fills the facts, the timeline and
what the run paged; a drill adds objectives, people and their answers,
findings, corrective actions and sign-offs, and may add tables of its own
(`sections`). Every part is a frozen dataclass of plain values, so the
document is its own JSON (`as_dict`). Times on the timeline are seconds from
the document's start (the run's start, or the end of a drill's injects).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from runbook.clock import parse_iso
from runbook.journal.records import DeliveryRecord, IncidentRecord, RunRecord, StepRecord

FORMAT = 1

# A step in one of these never began: listed, with no bar on the timeline.
UNSTARTED = frozenset({"skipped", "not_run", "awaiting_approval"})


@dataclass(frozen=True)
class Item:
    """One step on the timeline."""

    number: str
    name: str
    kind: str
    phase: str  # main | rollback
    status: str
    start_s: float | None  # None: it never began (skipped, not run)
    duration_s: float | None
    target_s: float | None = None
    verdict: str | None = None  # pass | fail | not reached, against the target
    error: str | None = None
    run: str | None = None  # which run (a drill has several): procedure, recovery
    reason: str | None = None  # why it ended so: a gate's message, a skip's condition

    @property
    def started(self) -> bool:
        return self.start_s is not None


@dataclass(frozen=True)
class Objective:
    name: str
    target_s: float | None
    actual_s: float | None  # None: not reached
    status: str  # pass | fail | not reached | no target


@dataclass(frozen=True)
class Participant:
    name: str
    role: str | None = None


@dataclass(frozen=True)
class Answer:
    """A person's answer to a question of the procedure (a `confirm` step)."""

    step: str | None
    by: str | None
    answered_after_s: float | None
    answer: str
    number: str | None = None


@dataclass(frozen=True)
class Finding:
    text: str
    by: str | None = None
    at: str | None = None


@dataclass(frozen=True)
class CorrectiveAction:
    text: str  # the action
    owner: str | None = None
    due: str | None = None
    status: str | None = None
    by: str | None = None
    at: str | None = None


@dataclass(frozen=True)
class Signoff:
    by: str
    at: str | None = None
    text: str | None = None  # the comment


@dataclass(frozen=True)
class Notification:
    """An incident the run opened or counted on, or a notification it sent."""

    what: str
    state: str
    channel: str | None = None
    at: str | None = None
    run: str | None = None


@dataclass(frozen=True)
class Section:
    """Any further table (a drill's injects, approvals…): rendered after the others."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class Document:
    title: str
    kind: str  # run | drill
    facts: dict[str, Any]  # label (`_` shown as a space) → value, in order; None: left out
    subtitle: str | None = None
    items: tuple[Item, ...] = ()
    objectives: tuple[Objective, ...] = ()
    participants: tuple[Participant, ...] = ()
    answers: tuple[Answer, ...] = ()
    findings: tuple[Finding, ...] = ()
    actions: tuple[CorrectiveAction, ...] = ()
    signoffs: tuple[Signoff, ...] = ()
    notifications: tuple[Notification, ...] = ()
    sections: tuple[Section, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    @property
    def span_s(self) -> float:
        """Where the timeline ends: the last step's end or the last target, whichever is later."""
        ends = [i.start_s + (i.duration_s or 0) for i in self.items if i.start_s is not None]
        ends += [i.start_s + i.target_s for i in self.items if i.start_s is not None and i.target_s]
        ends += [o.target_s for o in self.objectives if o.target_s is not None]
        ends += [o.actual_s for o in self.objectives if o.actual_s is not None]
        return max([*ends, 0.001])


def run_facts(run: RunRecord) -> dict[str, Any]:
    return {
        "run": run.id,
        "playbook": run.playbook,
        "playbook_sha256": run.playbook_sha256,
        "target": run.target,
        "mode": run.mode.value,
        "operator": f"{run.operator}@{run.host}",
        "started": run.started_at,
        "ended": run.ended_at,
        "status": run.status.value,
        "exit_code": run.exit_code,
        "severity": run.severity,
        "steps": _counts(run.counts),
        "reason": run.reason,
        "continues": run.continues,
    }


def _counts(counts: dict[str, int] | None) -> str | None:
    if not counts:
        return None
    return ", ".join(f"{n} {status}" for status, n in counts.items() if n) or None


def items_of(
    run: RunRecord,
    origin: str,
    targets: dict[str, float] | None = None,
    label: str | None = None,
) -> list[Item]:
    """A run's steps on a timeline that starts at `origin` (ISO time); `targets`
    by step key or name; `label` names the run on each item (a drill's role)."""
    start = parse_iso(origin)
    return [_item(step, start, targets or {}, label) for step in run.steps or ()]


def _item(
    step: StepRecord, start: dt.datetime, targets: dict[str, float], label: str | None
) -> Item:
    began = step.started_at is not None and step.status.value not in UNSTARTED
    at = (parse_iso(step.started_at) - start).total_seconds() if began and step.started_at else None
    took = step.duration_ms / 1000 if began and step.duration_ms is not None else None
    names = [n for n in (step.key, step.name) if n and n in targets]
    target = targets[names[0]] if names else None
    verdict = None
    if target is not None:
        verdict = "not reached" if took is None else "pass" if took <= target else "fail"
    return Item(
        number=step.number or str(step.seq),
        name=step.name or step.key or "?",
        kind=step.kind or "?",
        phase=step.phase or "main",
        status=step.status.value,
        start_s=None if at is None else round(max(at, 0.0), 6),
        duration_s=None if took is None else round(took, 6),
        target_s=target,
        verdict=verdict,
        error=step.error,
        run=label,
        reason=step.reason or None,
    )


def notifications_of(
    run: RunRecord,
    incidents: Iterable[IncidentRecord] = (),
    deliveries: Iterable[DeliveryRecord] = (),
) -> list[Notification]:
    """The incidents the run opened or counted on with their deliveries (those
    of this run), then what its `notify` steps sent. States are as of now."""
    out = []
    sent: dict[int | None, list[DeliveryRecord]] = {}
    for delivery in deliveries:
        if delivery.run_id == run.id:
            sent.setdefault(delivery.incident_id, []).append(delivery)
    for incident in incidents:
        out.append(
            Notification(
                what=f"incident {incident.id} ({incident.severity}): {incident.key}",
                state=incident.status.value,
                at=incident.opened_at,
            )
        )
        out += [
            Notification(
                what=f"incident {incident.id}: {d.event}"
                + (f" (level {d.level})" if d.level else ""),
                state=d.status.value,
                channel=d.channel,
                at=d.updated_at,
            )
            for d in sent.get(incident.id, [])
        ]
    for step in run.steps or ():
        for d in _step_deliveries(step):
            out.append(
                Notification(
                    what=f"step {step.number or step.seq}: {step.name or step.kind}",
                    state=str(d.get("status") or "?"),
                    channel=str(d.get("channel") or "?"),
                    at=step.ended_at,
                )
            )
    return out


def _step_deliveries(step: StepRecord) -> Sequence[dict[str, Any]]:
    found = (step.result or {}).get("deliveries") if step.kind == "notify" else None
    return [d for d in found if isinstance(d, dict)] if isinstance(found, list) else []


def from_run(
    run: RunRecord,
    incidents: Iterable[IncidentRecord] = (),
    deliveries: Iterable[DeliveryRecord] = (),
) -> Document:
    """The report of one run (read with its steps); `incidents` it opened or
    counted on, and their `deliveries`, where the caller read them."""
    return Document(
        title=f"{run.playbook} on {run.target or '?'}",
        kind="run",
        subtitle=f"{run.mode.value} {run.id}, {run.status.value}",
        facts=run_facts(run),
        items=tuple(items_of(run, run.started_at)),
        notifications=tuple(notifications_of(run, incidents, deliveries)),
    )
