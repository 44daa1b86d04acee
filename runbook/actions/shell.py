"""`shell`: run a command; an argv list runs with no shell at all."""

from __future__ import annotations

from runbook.actions.base import ANY, Field
from runbook.model import Step
from runbook.template import Kind

TEMPLATES: tuple[Field, ...] = (
    Field(("shell", ANY), Kind.TEXT),
    Field(("shell", "argv"), Kind.TEXT),
    Field(("shell", "command"), Kind.TEXT),
    Field(("shell", "env", ANY), Kind.TEXT),
    Field(("shell", "stdin"), Kind.TEXT),
    Field(("shell", "cwd"), Kind.TEXT),
)


def may_write(step: Step) -> bool:
    return bool(step.options.get("writes", True))
