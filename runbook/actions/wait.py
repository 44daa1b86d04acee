"""`wait`: poll a query until a condition holds, or sleep."""

from __future__ import annotations

from runbook.actions import sqlrun
from runbook.actions.base import RESULT, Field
from runbook.context import StepContext
from runbook.errors import StepError
from runbook.model import Step, seconds
from runbook.results import Result, ValueResult
from runbook.sqltemplate import template
from runbook.sqltemplate.template import Kind

TEMPLATES: tuple[Field, ...] = (
    Field(("wait", "query"), Kind.SQL),
    Field(("wait", "until"), Kind.EXPR, RESULT),
)


def may_write(step: Step) -> bool:
    return False


def run(ctx: StepContext) -> Result:
    body = ctx.step.body
    if "query" not in body:
        duration = seconds(body["for"]) or 0.0
        ctx.clock.sleep(duration)
        return ValueResult("wait", waited_s=duration)
    interval = seconds(body.get("interval")) or 2.0
    limit = seconds(body.get("timeout")) or 300.0
    until = body["until"]
    conditions: list[str] = (
        until if isinstance(until, list) else [] if isinstance(until, bool) else [until]
    )
    started = ctx.clock.monotonic()
    polls = 0
    while True:
        result = sqlrun.run(ctx, body["query"])
        polls += 1
        done = (
            until
            if isinstance(until, bool)
            else template.evaluate_all(conditions, {**ctx.scope, "result": result})
        )
        if done:
            ctx.note = f"condition met after {polls} poll(s)"
            return result
        if ctx.clock.monotonic() - started + interval > limit:
            shown = " and ".join(conditions) or str(until)
            raise StepError(
                f"waited {limit:g}s ({polls} polls) and `{shown}` is still false", result=result
            )
        ctx.clock.sleep(interval)


def preview(ctx: StepContext) -> str:
    body = ctx.step.body
    if "query" not in body:
        return f"wait {body['for']}"
    return f"wait until {body['until']}: " + sqlrun.preview(ctx, body["query"])
