"""Running templated SQL for the steps that do (query, sql, sql_file, wait)."""

from __future__ import annotations

from runbook.context import StepContext
from runbook.results import MAX_ROWS, QueryResult
from runbook.sqltemplate import template
from runbook.sqltemplate.sqlvalues import RenderedSql


def render(ctx: StepContext, source: str) -> list[RenderedSql]:
    conn = ctx.session.connect() if "literal" in source else None
    statements = template.render_sql(source, ctx.scope, conn)
    ctx.rendered = [s.display for s in statements]
    ctx.params = [p for s in statements for p in (s.params or ())]
    return statements


def run(ctx: StepContext, source: str) -> QueryResult:
    statements = render(ctx, source)
    return ctx.session.execute(
        statements,
        timeout=ctx.timeout,
        lock_timeout=ctx.lock_timeout,
        max_rows=MAX_ROWS,
    )


def preview(ctx: StepContext, source: str) -> str:
    """The SQL exactly as it would run, values quoted by psycopg (for --check)."""
    return ";\n".join(ctx.session.mogrify(s) for s in render(ctx, source))
