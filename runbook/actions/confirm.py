"""`confirm`: a person must say yes before the run goes on."""

from __future__ import annotations

from runbook.actions.base import Field
from runbook.model import Step
from runbook.template import Kind

TEMPLATES: tuple[Field, ...] = (
    Field(("confirm",), Kind.TEXT),
    Field(("confirm", "prompt"), Kind.TEXT),
    Field(("confirm", "details"), Kind.TEXT),
)


def may_write(step: Step) -> bool:
    return False
