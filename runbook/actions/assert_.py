"""`assert`: a precondition of the procedure; false fails the step."""

from __future__ import annotations

from runbook.actions.base import Field
from runbook.context import StepContext
from runbook.errors import StepError
from runbook.model import Step
from runbook.results import Result, ValueResult
from runbook.sqltemplate import template
from runbook.sqltemplate.template import Kind

TEMPLATES: tuple[Field, ...] = (
    Field(("assert", "that"), Kind.EXPR),
    Field(("assert", "message"), Kind.TEXT),
)


def may_write(step: Step) -> bool:
    return False


def _that(ctx: StepContext) -> list[str]:
    that = ctx.step.body["that"]
    return list(that) if isinstance(that, list) else [that]


def run(ctx: StepContext) -> Result:
    for expression in _that(ctx):
        if not template.evaluate(expression, ctx.scope):
            message = ctx.step.body.get("message")
            text = (
                template.render_text(message, ctx.scope)
                if message
                else f"assertion failed: {expression}"
            )
            raise StepError(text)
    return ValueResult("assert", passed=True)


def preview(ctx: StepContext) -> str:
    return "assert: " + " and ".join(_that(ctx))
