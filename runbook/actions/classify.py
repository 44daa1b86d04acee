"""`classify`: a value → a severity by ordered thresholds."""

from __future__ import annotations

from runbook.actions.base import Field
from runbook.model import Step
from runbook.template import Kind

TEMPLATES: tuple[Field, ...] = (
    Field(("classify", "value"), Kind.EXPR),
    Field(("classify", "message"), Kind.TEXT, frozenset({"value", "severity", "label"})),
)


def may_write(step: Step) -> bool:
    return False
