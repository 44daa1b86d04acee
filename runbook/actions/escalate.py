"""`escalate`: open or update an incident and start its escalation."""

from __future__ import annotations

from runbook import rendered
from runbook.actions.base import Field
from runbook.context import StepContext
from runbook.errors import StepError
from runbook.model import Step
from runbook.results import Result, ValueResult
from runbook.sqltemplate import template
from runbook.sqltemplate.template import Kind

TEMPLATES: tuple[Field, ...] = (
    Field(("escalate", "message"), Kind.TEXT),
    Field(("escalate", "key"), Kind.TEXT),
    Field(("escalate", "severity"), Kind.TEXT),
)


def may_write(step: Step) -> bool:
    return False


def run(ctx: StepContext) -> Result:
    body = ctx.step.body
    if ctx.notifier is None:
        raise StepError("escalation is not available in this run")
    message = template.render_text(body["message"], ctx.scope)
    key = template.render_text(body["key"], ctx.scope) if body.get("key") else ctx.step.key
    level = rendered.severity(body["severity"], ctx.scope, ctx.scale, ctx.step.loc, "severity")
    incident = ctx.notifier.escalate(
        key, level, message, policy=body.get("policy"), gate=ctx.step.key
    )
    ctx.severity = level
    ctx.note = f"incident {incident.get('id')} ({incident.get('state', 'open')})"
    return ValueResult("escalate", incident=incident, message=message)


def preview(ctx: StepContext) -> str:
    body = ctx.step.body
    return f"escalate {body['severity']}: {template.render_text(body['message'], ctx.scope)}"
