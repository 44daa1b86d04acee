"""`assert`: a precondition of the procedure; false fails the step."""

from __future__ import annotations

from runbook.actions.base import Field
from runbook.model import Step
from runbook.template import Kind

TEMPLATES: tuple[Field, ...] = (
    Field(("assert", "that"), Kind.EXPR),
    Field(("assert", "message"), Kind.TEXT),
)


def may_write(step: Step) -> bool:
    return False
