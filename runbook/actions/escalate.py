"""`escalate`: open or update an incident and start its escalation."""

from __future__ import annotations

from runbook.actions.base import Field
from runbook.model import Step
from runbook.template import Kind

TEMPLATES: tuple[Field, ...] = (
    Field(("escalate", "message"), Kind.TEXT),
    Field(("escalate", "key"), Kind.TEXT),
)


def may_write(step: Step) -> bool:
    return False
