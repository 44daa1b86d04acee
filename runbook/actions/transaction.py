"""`transaction`: steps run in one database transaction, a savepoint each."""

from __future__ import annotations

from runbook.actions.base import Field
from runbook.model import Step

TEMPLATES: tuple[Field, ...] = ()


def may_write(step: Step) -> bool:
    from runbook.actions import REGISTRY

    return any(REGISTRY[child.kind].may_write(child) for child in step.children)
