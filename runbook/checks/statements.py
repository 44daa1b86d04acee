"""Checks of a step's SQL text: statements that cannot run where runbook
runs them (in a transaction, in a check's read-only transaction, in a
writing step's transaction with its exactly-once marker), and a sql_file
that cannot be read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from runbook import actions
from runbook.checks.common import at, doc_at, get_path, read_sql_file
from runbook.checks.templates import matches
from runbook.errors import Problem
from runbook.load import sqlfiles
from runbook.load.yamlsrc import DataPath, Document
from runbook.model import Step
from runbook.sqltemplate import sqltext
from runbook.sqltemplate.template import Kind


def transaction_block(doc: Document, step: Step) -> Iterator[Problem]:
    for child in step.children:
        if child.options.get("autocommit"):
            yield doc_at(
                doc,
                (*child.data_path, "autocommit"),
                "a step with autocommit: true cannot be inside a transaction block; move it out",
                "autocommit-in-transaction",
                key=True,
            )
        elif child.kind in ("sql", "query"):
            statement = sqltext.needs_autocommit(child.body)
            if statement:
                yield doc_at(
                    doc,
                    (*child.data_path, child.kind),
                    f"`{statement}` cannot run inside a transaction block; move the step out "
                    "and mark it autocommit: true",
                    "needs-autocommit",
                )
        elif child.kind in ("transaction", "include", "confirm"):
            yield at(
                child.loc,
                f"a {child.kind} step cannot be inside a transaction block",
                "in-transaction",
            )


def _step_sql(doc: Document, step: Step, root: Path) -> Iterator[tuple[DataPath, str]]:
    """(data path, SQL text) of each SQL field of a step: the fields its action
    declares as SQL templates, and a sql_file's text."""
    raw = get_path(doc.data, step.data_path)
    for field in actions.REGISTRY[step.kind].TEMPLATES:
        if field.kind is Kind.SQL:
            for sub, value in matches(raw, field.path):
                if isinstance(value, str):
                    yield (*step.data_path, *sub), value
    if step.kind == "sql_file" and isinstance(step.body, str):
        text = read_sql_file(root, step.body)
        if text is not None:
            yield (*step.data_path, "sql_file"), text


def statements(
    doc: Document,
    step: Step,
    root: Path,
    find: Callable[[str], str | None],
    message: str,
    code: str,
) -> Iterator[Problem]:
    """A problem at each SQL field of the step in which `find` names a statement
    (`message` says `{statement}` where it goes)."""
    for path, sql in _step_sql(doc, step, root):
        statement = find(sql)
        if statement:
            yield doc_at(doc, path, message.replace("{statement}", f"`{statement}`"), code)


def read_only_escape(doc: Document, step: Step, root: Path) -> Iterator[Problem]:
    yield from statements(
        doc,
        step,
        root,
        sqltext.escapes_read_only,
        "playbook is kind: check (read-only) but {statement} would end its read-only "
        "transaction or turn read-only off, and what follows could write; a check controls no transactions (make the playbook kind: change if it must)",
        "read-only-escape",
    )


def transaction_control(doc: Document, step: Step, root: Path) -> Iterator[Problem]:
    yield from statements(
        doc,
        step,
        root,
        sqltext.controls_transaction,
        "{statement} would end the transaction runbook runs this writing step in (with its exactly-once "
        "marker), so a crash could leave half the step done and counted as done; split the "
        "step, group steps with `transaction:`, or mark it `autocommit: true` (its crash "
        "outcome is then unknown)",
        "transaction-control",
    )


def sql_file(doc: Document, step: Step, root: Path) -> Iterator[Problem]:
    found = sqlfiles.read(root, step.body)
    if found.message is not None:
        yield doc_at(doc, (*step.data_path, "sql_file"), found.message, found.code or "sql-file")
