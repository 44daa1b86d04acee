"""`query`: run SQL and keep its rows."""

from __future__ import annotations

from runbook.actions import sqlrun
from runbook.actions.base import Field
from runbook.context import StepContext
from runbook.model import Step
from runbook.results import Result
from runbook.sqltemplate.template import Kind

TEMPLATES: tuple[Field, ...] = (Field(("query",), Kind.SQL),)


def may_write(step: Step) -> bool:
    # A query reads unless it says otherwise (`SELECT rollback_constraint(…)` writes).
    return bool(step.options.get("writes", False))


def run(ctx: StepContext) -> Result:
    return sqlrun.run(ctx, ctx.step.body)


def preview(ctx: StepContext) -> str:
    return sqlrun.preview(ctx, ctx.step.body)
