"""`gate`: check earlier results; a false gate fails with its severity."""

from __future__ import annotations

from runbook.actions.base import Field
from runbook.context import StepContext
from runbook.model import Step
from runbook.results import Result, ValueResult

# Gate expressions are common to every step kind and checked by `runbook.checks`.
TEMPLATES: tuple[Field, ...] = ()


def may_write(step: Step) -> bool:
    return False


def run(ctx: StepContext) -> Result:
    # The engine evaluates the step's gates after this, like any step's.
    return ValueResult("gate")


def preview(ctx: StepContext) -> str:
    return "gate: " + "; ".join(" and ".join(gate.that) for gate in ctx.step.gates)
