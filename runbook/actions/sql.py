"""`sql`: run one or more statements."""

from __future__ import annotations

from runbook.actions.base import Field
from runbook.model import Step
from runbook.template import Kind

TEMPLATES: tuple[Field, ...] = (Field(("sql",), Kind.SQL),)


def may_write(step: Step) -> bool:
    return bool(step.options.get("writes", True))
