"""`confirm`: a person must say yes before the run goes on."""

from __future__ import annotations

from runbook.actions.base import Field
from runbook.context import StepContext
from runbook.errors import Declined, StepError
from runbook.model import Step
from runbook.results import Result, ValueResult
from runbook.sqltemplate import template
from runbook.sqltemplate.template import Kind

TEMPLATES: tuple[Field, ...] = (
    Field(("confirm",), Kind.TEXT),
    Field(("confirm", "prompt"), Kind.TEXT),
    Field(("confirm", "details"), Kind.TEXT),
)


def may_write(step: Step) -> bool:
    return False


def _texts(ctx: StepContext) -> tuple[str, str | None]:
    body = ctx.step.body
    if isinstance(body, str):
        return template.render_text(body, ctx.scope), None
    details = body.get("details")
    return (
        template.render_text(body["prompt"], ctx.scope),
        template.render_text(details, ctx.scope) if details else None,
    )


def run(ctx: StepContext) -> Result:
    prompt, details = _texts(ctx)
    if ctx.assume_yes:
        ctx.note = "confirmed by --yes"
        return ValueResult("confirm", confirmed=True, by="--yes", prompt=prompt)
    if ctx.prompter is None:
        raise StepError(
            f"needs a person to confirm: {prompt!r}; run from a terminal, or pass --yes"
        )
    if not ctx.prompter(prompt, details):
        raise Declined(f"{ctx.run.operator} answered no to {prompt!r}")
    ctx.note = f"confirmed by {ctx.run.operator}"
    return ValueResult("confirm", confirmed=True, by=ctx.run.operator, prompt=prompt)


def preview(ctx: StepContext) -> str:
    return f"confirm: {_texts(ctx)[0]}"
