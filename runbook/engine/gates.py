"""Gates: expressions on a step's result that pass or fail with a severity."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from runbook import rendered
from runbook.context import StepContext
from runbook.model import Scale
from runbook.outcome import GateOutcome, Status
from runbook.plan import PlannedStep
from runbook.results import Result, SkippedResult, ValueResult
from runbook.sqltemplate import template

# The statuses that stop a run (or, under `on_failure: continue`, count as failures).
STOPPING = (
    Status.FAILED,
    Status.GATE_FAILED,
    Status.UNKNOWN,
    Status.DECLINED,
    Status.AWAITING_APPROVAL,
)
_STRICTNESS = {"continue": 0, "halt": 1, "rollback": 2}


def strictest(ps: PlannedStep, failed: set[str], default: str) -> str:
    """The strictest `on_failure` of the failing gates, each defaulting to the step's."""
    policies = [
        gate.on_failure or default
        for index, gate in enumerate(ps.step.gates)
        if gate_name(ps, index) in failed
    ]
    return max(policies or [default], key=lambda p: _STRICTNESS.get(p, 1))


def gate_name(ps: PlannedStep, index: int) -> str:
    """A gate's name: its own, else the step's key (with #n when the step has several)."""
    gate = ps.step.gates[index]
    if gate.name:
        return gate.name
    return ps.step.key if len(ps.step.gates) == 1 else f"{ps.step.key}#{index + 1}"


class GateCheck:
    def __init__(self, scale: Scale) -> None:
        self.scale = scale

    def rank(self, severity: str | None) -> int:
        level = self.scale.get(severity) if severity else None
        return level.rank if level else -1

    def worst(self, severities: Iterable[str | None]) -> str | None:
        found = [s for s in severities if s]
        return max(found, key=self.rank) if found else None

    def evaluate(
        self,
        ps: PlannedStep,
        scope: dict[str, Any],
        result: Result,
        ctx: StepContext,
        runtime: dict[str, Any],
    ) -> list[GateOutcome]:
        out = []
        for i, gate in enumerate(ps.step.gates):
            name = gate_name(ps, i)
            if ctx.run.check and self._depends_on_unrun(gate.that, scope):
                out.append(
                    GateOutcome(
                        name,
                        True,
                        gate.severity,
                        "not evaluated in --check: its inputs did not run",
                    )
                )
                continue
            passed = template.evaluate_all(gate.that, scope)
            message = ""
            severity = gate.severity
            if not passed:
                message = (
                    " ".join(template.render_text(gate.message, scope).split())
                    if gate.message
                    else f"gate failed: {' and '.join(gate.that)}"
                )
                # Decided by a value (`severity: "{{ row.level }}"`) only when it fails.
                severity = rendered.severity(severity, scope, self.scale, ps.step.loc, "severity")
            elif template.is_template(severity):
                severity = ""  # a passing gate's templated severity is never rendered
            out.append(GateOutcome(name, bool(passed), severity, message))
        if ps.kind == "classify" and isinstance(result, ValueResult):
            out.extend(self._classify(ps, result))
        return out

    def _classify(self, ps: PlannedStep, result: ValueResult) -> list[GateOutcome]:
        fail_at = result.values.get("fail_at")  # rendered, when templated
        if not fail_at:
            return []
        severity = result.values.get("severity")
        passed = self.rank(severity) < self.rank(fail_at)
        message = (
            result.values.get("message")
            or f"{ps.step.body['value']} = {result.values.get('value')} is {severity}"
        )
        return [GateOutcome(ps.step.key, passed, severity or fail_at, "" if passed else message)]

    @staticmethod
    def _depends_on_unrun(expressions: Iterable[str], scope: dict[str, Any]) -> bool:
        for expression in expressions:
            for name in template.names_used(template.Kind.EXPR, expression):
                if isinstance(scope.get(name), SkippedResult):
                    return True
        return False
