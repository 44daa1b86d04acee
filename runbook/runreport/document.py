"""A report as data: what `runbook report` and a drill's scorecard render.

One document type for both: a run's report fills the facts and the timeline;
a drill adds objectives, people, findings, corrective actions and sign-offs.
Times on the timeline are seconds from the document's start (the run's start,
or the drill's inject).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from runbook.clock import parse_iso
from runbook.journal.records import RunRecord, StepRecord

FORMAT = 1


@dataclass(frozen=True)
class Item:
    """One step on the timeline."""

    number: str
    name: str
    kind: str
    phase: str  # main | rollback
    status: str
    start_s: float | None  # None: it never started (skipped, not run)
    duration_s: float | None
    target_s: float | None = None
    verdict: str | None = None  # pass | fail against the target
    error: str | None = None
    run: str | None = None  # which run (a drill has several): inject, procedure, recovery


@dataclass(frozen=True)
class Objective:
    name: str
    target_s: float | None
    actual_s: float | None
    status: str  # pass | fail | not reached | no target


@dataclass(frozen=True)
class Document:
    title: str
    kind: str  # run | drill
    facts: dict[str, Any]
    items: tuple[Item, ...] = ()
    objectives: tuple[Objective, ...] = ()
    participants: tuple[dict[str, str], ...] = ()
    answers: tuple[dict[str, Any], ...] = ()
    findings: tuple[dict[str, Any], ...] = ()
    actions: tuple[dict[str, Any], ...] = ()
    signoffs: tuple[dict[str, Any], ...] = ()
    notifications: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = FORMAT
        return data

    @property
    def span_s(self) -> float:
        """Where the timeline ends: the last step's end or the last target, whichever is later."""
        ends = [i.start_s + (i.duration_s or 0) for i in self.items if i.start_s is not None]
        ends += [(i.start_s or 0) + i.target_s for i in self.items if i.target_s is not None]
        ends += [o.target_s for o in self.objectives if o.target_s is not None]
        ends += [o.actual_s for o in self.objectives if o.actual_s is not None]
        return max([*ends, 0.001])


def run_facts(run: RunRecord) -> dict[str, Any]:
    return {
        "run": run.id,
        "playbook": run.playbook,
        "target": run.target,
        "mode": run.mode.value,
        "operator": f"{run.operator}@{run.host}",
        "started": run.started_at,
        "ended": run.ended_at,
        "status": run.status.value,
        "exit code": run.exit_code,
        "severity": run.severity,
        "reason": run.reason,
    }


def items_of(
    run: RunRecord,
    origin: str,
    targets: dict[str, float] | None = None,
    label: str | None = None,
) -> list[Item]:
    """A run's steps on a timeline that starts at `origin` (ISO time)."""
    start = parse_iso(origin)
    out = []
    for step in run.steps or ():
        out.append(_item(step, start, targets or {}, label))
    return out


def _item(step: StepRecord, start: Any, targets: dict[str, float], label: str | None) -> Item:
    began = (parse_iso(step.started_at) - start).total_seconds() if step.started_at else None
    took = step.duration_ms / 1000 if step.duration_ms is not None else None
    names = [n for n in (step.key, step.name) if n and n in targets]
    target = targets[names[0]] if names else None
    verdict = None
    if target is not None:
        verdict = "pass" if took is not None and took <= target else "fail"
    return Item(
        number=step.number or str(step.seq),
        name=step.name or step.key or "?",
        kind=step.kind or "?",
        phase=step.phase or "main",
        status=step.status.value,
        start_s=None if began is None else round(max(began, 0.0), 6),
        duration_s=None if took is None else round(took, 6),
        target_s=target,
        verdict=verdict,
        error=step.error,
        run=label,
    )


def from_run(run: RunRecord) -> Document:
    """The report of one run."""
    return Document(
        title=f"{run.playbook} on {run.target}",
        kind="run",
        facts=run_facts(run),
        items=tuple(items_of(run, run.started_at)),
    )
