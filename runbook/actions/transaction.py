"""`transaction`: steps run in one database transaction, a savepoint each."""

from __future__ import annotations

from runbook.actions.base import Field
from runbook.context import StepContext
from runbook.model import Step
from runbook.results import Result

TEMPLATES: tuple[Field, ...] = ()


def may_write(step: Step) -> bool:
    from runbook.actions import REGISTRY

    return any(REGISTRY[child.kind].may_write(child) for child in step.children)


def run(ctx: StepContext) -> Result:
    raise RuntimeError("transaction steps are run by the engine, step by step")


def preview(ctx: StepContext) -> str:
    return "transaction"
