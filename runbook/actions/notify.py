"""`notify`: send a message through inventory channels."""

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
    Field(("notify", "message"), Kind.TEXT),
    Field(("notify", "subject"), Kind.TEXT),
    Field(("notify", "severity"), Kind.TEXT),
)


def may_write(step: Step) -> bool:
    return False


def run(ctx: StepContext) -> Result:
    body = ctx.step.body
    if ctx.notifier is None:
        raise StepError("notifications are not available in this run")
    message = template.render_text(body["message"], ctx.scope)
    subject = template.render_text(body["subject"], ctx.scope) if body.get("subject") else None
    deliveries = ctx.notifier.notify(
        list(body["channels"]),
        message,
        subject=subject,
        severity=(
            rendered.severity(body["severity"], ctx.scope, ctx.scale, ctx.step.loc, "severity")
            if body.get("severity")
            else None
        ),
        to=list(body.get("to", ())),
    )
    failed = [d for d in deliveries if d.get("status") != "delivered"]
    pending = sum(1 for d in failed if d.get("status") == "pending")
    # Pending: still going when the grace period ended; the run's end lets go
    # of what is left, for the next `escalations tick`.
    ctx.note = f"{len(deliveries) - len(failed)}/{len(deliveries)} delivered" + (
        f", {pending} pending" if pending else ""
    )
    return ValueResult("notify", message=message, deliveries=deliveries, failed=len(failed))


def preview(ctx: StepContext) -> str:
    body = ctx.step.body
    return (
        f"notify {', '.join(body['channels'])}: {template.render_text(body['message'], ctx.scope)}"
    )
