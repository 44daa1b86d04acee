"""`sql_file`: run the SQL in a file under the project's sql/ folder."""

from __future__ import annotations

from runbook.actions import sqlrun
from runbook.actions.base import Field
from runbook.context import StepContext
from runbook.errors import StepError
from runbook.model import Step
from runbook.results import Result

# The file's text is the template; `runbook.checks` reads and checks it.
TEMPLATES: tuple[Field, ...] = ()


def may_write(step: Step) -> bool:
    return bool(step.options.get("writes", True))


def _source(ctx: StepContext) -> str:
    path = (ctx.root / "sql" / str(ctx.step.body)).resolve()
    try:
        return path.read_text("utf-8")
    except OSError as exc:
        raise StepError(f"cannot read sql_file {ctx.step.body}: {exc.strerror}") from None


def run(ctx: StepContext) -> Result:
    return sqlrun.run(ctx, _source(ctx))


def preview(ctx: StepContext) -> str:
    return sqlrun.preview(ctx, _source(ctx))
