"""`query`: run SQL and keep its rows."""

from __future__ import annotations

import os

from runbook.actions import export, sqlrun
from runbook.actions.base import Field
from runbook.context import StepContext
from runbook.model import Step
from runbook.results import Result
from runbook.sqltemplate import template
from runbook.sqltemplate.template import Kind

TEMPLATES: tuple[Field, ...] = (
    Field(("query",), Kind.SQL),
    Field(("export", "path"), Kind.TEXT),
)


def may_write(step: Step) -> bool:
    # A query reads unless it says otherwise (`SELECT rollback_constraint(…)` writes).
    return bool(step.options.get("writes", False))


def run(ctx: StepContext) -> Result:
    spec = ctx.step.options.get("export")
    if not spec or ctx.run.check or ctx.run.rehearse:
        if spec:
            ctx.note = f"export not written ({ctx.run.mode})"
        return sqlrun.run(ctx, ctx.step.body)
    written = template.render_text(spec["path"], ctx.scope)
    out = export.Export(
        export.target(ctx.root, written), export.format_of(written, spec.get("format"))
    )
    try:
        result = sqlrun.run(ctx, ctx.step.body, sink=out)
        done = out.finish()
    except BaseException:
        out.abandon()
        raise
    result.export = done
    shown = os.path.relpath(done["path"], ctx.root)
    ctx.note = f"exported {done['rows']} row(s) to {shown} (sha256 {done['sha256'][:12]}…)"
    return result


def preview(ctx: StepContext) -> str:
    return sqlrun.preview(ctx, ctx.step.body)
