"""`include`: another playbook's steps, run here with the step's `vars`."""

from __future__ import annotations

from runbook.actions.base import Field
from runbook.model import Step

TEMPLATES: tuple[Field, ...] = ()


def may_write(step: Step) -> bool:
    # What the included steps do is judged step by step when they are planned.
    return False
