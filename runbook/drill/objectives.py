"""A drill measured: objectives and per-step targets against the journal's
records of its runs. The clock starts when the injects ended (`inject_at`).

- time to respond: until the procedure's first step began;
- time to mitigate: until the procedure ended ok (not reached otherwise);
- time to recover: until the recovery playbook ended ok, its gates passed (the
  procedure's end when the drill has no recovery playbook);
- a step with a target: its own duration against it;
- people: each `confirm` step, who answered and how long it waited for them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from runbook.clock import parse_iso
from runbook.drill.plan import DrillPlan, Target
from runbook.journal.records import RunRecord
from runbook.outcome import RunStatus, Status


@dataclass(frozen=True)
class Result:
    name: str
    target_s: float | None
    actual_s: float | None  # None: not reached
    status: str  # pass | fail | not reached | no target

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(name: str, target: float | None, actual: float | None) -> Result:
    if actual is None:
        return Result(name, target, None, "not reached")
    if target is None:
        return Result(name, None, round(actual, 3), "no target")
    return Result(name, target, round(actual, 3), "pass" if actual <= target else "fail")


def _since(start: dt.datetime, text: str | None) -> float | None:
    return None if text is None else (parse_iso(text) - start).total_seconds()


def measure(
    plan: DrillPlan, inject_at: str, procedure: RunRecord | None, recovery: RunRecord | None
) -> list[Result]:
    start = parse_iso(inject_at)
    first = None
    mitigated = None
    if procedure is not None:
        began = [s.started_at for s in procedure.steps or () if s.started_at]
        first = _since(start, min(began)) if began else None
        if procedure.status is RunStatus.OK:
            mitigated = _since(start, procedure.ended_at)
    recovered = mitigated
    if plan.recovery is not None:
        recovered = None
        if recovery is not None and recovery.status is RunStatus.OK:
            recovered = _since(start, recovery.ended_at)
    return [
        _one(plan.respond, first),
        _one(plan.mitigate, mitigated),
        _one(plan.recover, recovered),
    ]


def _one(target: Target, actual: float | None) -> Result:
    return judge(target.name, target.seconds, actual)


def step_results(plan: DrillPlan, procedure: RunRecord | None) -> list[dict[str, Any]]:
    """Each step of the procedure that has a target: its duration against it."""
    out = []
    for step in procedure.steps or () if procedure is not None else ():
        if step.phase == "rollback":
            continue
        names = [n for n in (step.key, step.name) if n and n in plan.step_targets]
        if not names:
            continue
        target = plan.step_targets[names[0]]
        took = step.duration_ms / 1000 if step.duration_ms is not None else None
        ran = step.status not in (Status.SKIPPED, Status.NOT_RUN)
        result = judge(step.name or step.key or "?", target, took if ran else None)
        out.append({"number": step.number, **result.as_dict()})
    return out


def answers(procedure: RunRecord | None) -> list[dict[str, Any]]:
    """Who answered each question of the procedure, and how long it waited."""
    out = []
    for step in procedure.steps or () if procedure is not None else ():
        if step.kind != "confirm" or step.started_at is None:
            continue
        result = step.result or {}
        out.append(
            {
                "step": step.name,
                "number": step.number,
                "by": result.get("by") or step.note,
                "answered_after_s": round(step.duration_ms / 1000, 3)
                if step.duration_ms is not None
                else None,
                "answer": step.status.value,
            }
        )
    return out
