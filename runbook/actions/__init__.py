"""The step kinds: one module per kind, in one typed registry.

The registry and the playbook schema's list of step kinds must be the same list;
`tests/actions_test.py` fails if they drift.
"""

from __future__ import annotations

from typing import Protocol

from runbook.actions import (
    assert_,
    classify,
    confirm,
    escalate,
    gate,
    http,
    include,
    notify,
    query,
    set_,
    shell,
    sql,
    sql_file,
    transaction,
    wait,
)
from runbook.actions.base import Field
from runbook.context import StepContext
from runbook.model import Step
from runbook.results import Result


class Action(Protocol):
    TEMPLATES: tuple[Field, ...]

    def may_write(self, step: Step) -> bool:
        """Whether the step can change anything (database, files, remote state)."""
        ...

    def run(self, ctx: StepContext) -> Result:
        """Do the step's work; raise StepError (or a database error) if it cannot."""
        ...

    def preview(self, ctx: StepContext) -> str:
        """What the step would do, without doing it (for --check)."""
        ...


REGISTRY: dict[str, Action] = {
    "query": query,
    "sql": sql,
    "sql_file": sql_file,
    "gate": gate,
    "assert": assert_,
    "classify": classify,
    "set": set_,
    "include": include,
    "shell": shell,
    "http": http,
    "confirm": confirm,
    "wait": wait,
    "notify": notify,
    "escalate": escalate,
    "transaction": transaction,
}

BLOCKS = frozenset({"include", "transaction"})  # kinds whose steps do the work


def writes(step: Step) -> bool:
    """Whether the step itself may change anything; a block (include,
    transaction) is not a writing step of its own: its steps are judged."""
    return step.kind not in BLOCKS and REGISTRY[step.kind].may_write(step)
