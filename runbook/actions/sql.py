"""`sql`: run one or more statements."""

from __future__ import annotations

from runbook.actions import sqlrun
from runbook.actions.base import Field
from runbook.context import StepContext
from runbook.model import Step
from runbook.results import Result
from runbook.sqltemplate.template import Kind

TEMPLATES: tuple[Field, ...] = (Field(("sql",), Kind.SQL),)


def may_write(step: Step) -> bool:
    return bool(step.options.get("writes", True))


def run(ctx: StepContext) -> Result:
    return sqlrun.run(ctx, ctx.step.body)


def preview(ctx: StepContext) -> str:
    return sqlrun.preview(ctx, ctx.step.body)
