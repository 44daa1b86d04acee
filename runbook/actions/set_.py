"""`set`: give variables values."""

from __future__ import annotations

from runbook import variables
from runbook.actions.base import ANY, Field
from runbook.context import StepContext
from runbook.model import Step
from runbook.results import Result, ValueResult
from runbook.sqltemplate.template import Kind

TEMPLATES: tuple[Field, ...] = (Field(("set", ANY), Kind.TEXT),)


def may_write(step: Step) -> bool:
    return False


def run(ctx: StepContext) -> Result:
    values = {
        name: variables.render_native(value, ctx.scope) for name, value in ctx.step.body.items()
    }
    return ValueResult("set", **values)


def preview(ctx: StepContext) -> str:
    return "set: " + ", ".join(ctx.step.body)
