"""`set`: give variables values."""

from __future__ import annotations

from runbook.actions.base import ANY, Field
from runbook.model import Step
from runbook.template import Kind

TEMPLATES: tuple[Field, ...] = (Field(("set", ANY), Kind.TEXT),)


def may_write(step: Step) -> bool:
    return False
