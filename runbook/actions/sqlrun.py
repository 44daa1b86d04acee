"""Running templated SQL for the steps that do (query, sql, sql_file, wait)."""

from __future__ import annotations

import time
from typing import Any

from runbook.context import StepContext
from runbook.errors import StepError
from runbook.pg.db import RowSink, StepTimeout
from runbook.results import MAX_ROWS, QueryResult
from runbook.sqltemplate import template
from runbook.sqltemplate.sqlvalues import RenderedSql


def render(ctx: StepContext, source: str, one_by_one: bool = False) -> list[RenderedSql]:
    # The connection quotes literals its way and says how its session reads
    # strings (sqlvalues.Fragment.text); only a template that splices needs it.
    conn = ctx.session.connect() if "literal" in source or "ident" in source else None
    statements = template.render_sql(source, ctx.scope, conn, one_by_one=one_by_one)
    ctx.rendered = [s.display for s in statements]
    ctx.params = [p for s in statements for p in (s.params or ())]
    return statements


def autocommit(ctx: StepContext) -> bool:
    return bool(ctx.step.options.get("autocommit"))


def run(ctx: StepContext, source: str, sink: RowSink | None = None) -> QueryResult:
    """`sink`: an export, handed every row of the (single) statement as it comes."""
    if autocommit(ctx) and sink is None:
        return run_one_by_one(ctx, render(ctx, source, one_by_one=True))
    statements = render(ctx, source)
    if sink is not None and len(statements) > 1:
        raise StepError("export: the query must be one statement (its rows are the export)")
    return ctx.session.execute(
        statements,
        timeout=ctx.timeout,
        lock_timeout=ctx.lock_timeout,
        max_rows=MAX_ROWS,
        sink=sink,
    )


def run_one_by_one(ctx: StepContext, statements: list[RenderedSql]) -> QueryResult:
    """Each statement on its own, in autocommit, in order, as psql runs a script.

    Sent together, PostgreSQL would run them as one implicit transaction block,
    which VACUUM, CREATE INDEX CONCURRENTLY, ALTER SYSTEM … refuse. Each one
    that ends is committed and stays so: the first error stops the step, and
    `ctx.statements_done` says how many had ended (the engine names the failing
    one; the journal hears of each as it ends, so a crash between two leaves
    the count behind). A retry after an error goes on at the statement that
    failed; one asked for by `until` (the step ended) runs them all again.
    The last statement that returns rows gives the rows, like one query would.
    """
    total = len(statements)
    done = ctx.statements_done if ctx.statements == total and ctx.statements_done < total else 0
    ctx.statements, ctx.statements_done = total, done
    rows: list[dict[str, Any]] = []
    columns: list[str] = []
    rowcount = 0
    notices: list[str] = []
    status = ""
    truncated = False
    started = time.perf_counter()
    for statement in statements[done:]:
        result = ctx.session.execute(
            [statement],
            timeout=_time_left(ctx, started),
            lock_timeout=ctx.lock_timeout,
            max_rows=MAX_ROWS,
        )
        notices += result.notices
        if result.columns:
            rows, columns, rowcount = result.rows, result.columns, result.rowcount
            truncated = result.truncated
        else:
            rowcount += result.rowcount
        status = result.status or status
        ctx.statements_done += 1
        if ctx.on_statement is not None and ctx.statements_done < total:
            ctx.on_statement(ctx.statements_done, total)
    elapsed = (time.perf_counter() - started) * 1000
    return QueryResult(rows, columns, rowcount, notices, elapsed, status, truncated)


def _time_left(ctx: StepContext, started: float) -> float:
    """What remains of the step's timeout for its next statement: the step's
    timeout bounds the step, however many statements it has (0: no limit)."""
    if ctx.timeout <= 0:
        return ctx.timeout
    left = ctx.timeout - (time.perf_counter() - started)
    if left <= 0:
        raise StepTimeout(f"timed out after {ctx.timeout:g}s (the step's timeout)")
    return left


def preview(ctx: StepContext, source: str) -> str:
    """The SQL exactly as it would run, values quoted by psycopg (for --check)."""
    return ";\n".join(ctx.session.mogrify(s) for s in render(ctx, source, autocommit(ctx)))
