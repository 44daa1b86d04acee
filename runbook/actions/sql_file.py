"""`sql_file`: run the SQL in a file under the project's sql/ folder."""

from __future__ import annotations

from runbook.actions import sqlrun
from runbook.actions.base import Field
from runbook.context import StepContext
from runbook.errors import StepError
from runbook.load import sqlfiles
from runbook.model import Step
from runbook.results import Result

# The file's text is the template; `runbook.checks` reads and checks it.
TEMPLATES: tuple[Field, ...] = ()


def may_write(step: Step) -> bool:
    return bool(step.options.get("writes", True))


def _source(ctx: StepContext) -> str:
    """The file's text, read through the checks' own gate: a file re-pointed
    outside sql/, swapped for one holding a NUL or not UTF-8 since validation,
    is refused here too."""
    found = sqlfiles.read(ctx.root, str(ctx.step.body))
    if found.text is None:
        raise StepError(found.message or f"cannot read sql_file {ctx.step.body!r}")
    return found.text


def run(ctx: StepContext) -> Result:
    return sqlrun.run(ctx, _source(ctx))


def preview(ctx: StepContext) -> str:
    return sqlrun.preview(ctx, _source(ctx))
