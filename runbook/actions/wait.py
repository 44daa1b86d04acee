"""`wait`: poll a query until a condition holds, or sleep."""

from __future__ import annotations

from runbook.actions.base import RESULT, Field
from runbook.model import Step
from runbook.template import Kind

TEMPLATES: tuple[Field, ...] = (
    Field(("wait", "query"), Kind.SQL),
    Field(("wait", "until"), Kind.EXPR, RESULT),
)


def may_write(step: Step) -> bool:
    return False
