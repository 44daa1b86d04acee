"""`gate`: check earlier results; a false gate fails with its severity."""

from __future__ import annotations

from runbook.actions.base import Field
from runbook.model import Step

# Gate expressions are common to every step kind and checked by `runbook.checks`.
TEMPLATES: tuple[Field, ...] = ()


def may_write(step: Step) -> bool:
    return False
