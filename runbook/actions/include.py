"""`include`: another playbook's steps, run here with the step's `vars`."""

from __future__ import annotations

from runbook.actions.base import Field
from runbook.context import StepContext
from runbook.model import Step
from runbook.results import Result

TEMPLATES: tuple[Field, ...] = ()


def may_write(step: Step) -> bool:
    # What the included steps do is judged step by step when they are planned.
    return False


def run(ctx: StepContext) -> Result:
    raise RuntimeError("include steps are run by the engine, step by step")


def preview(ctx: StepContext) -> str:
    return "include"
