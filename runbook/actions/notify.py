"""`notify`: send a message through inventory channels."""

from __future__ import annotations

from runbook.actions.base import Field
from runbook.model import Step
from runbook.template import Kind

TEMPLATES: tuple[Field, ...] = (
    Field(("notify", "message"), Kind.TEXT),
    Field(("notify", "subject"), Kind.TEXT),
)


def may_write(step: Step) -> bool:
    return False
