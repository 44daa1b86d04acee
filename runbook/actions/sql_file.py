"""`sql_file`: run the SQL in a file under the project's sql/ folder."""

from __future__ import annotations

from runbook.actions.base import Field
from runbook.model import Step

# The file's text is the template; `runbook.checks` reads and checks it.
TEMPLATES: tuple[Field, ...] = ()


def may_write(step: Step) -> bool:
    return bool(step.options.get("writes", True))
