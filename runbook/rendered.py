"""Values a playbook may template where a number or a severity is expected.

`above: "{{ limits.warn }}"` on a classify threshold, `severity: "{{ row.level }}"`
on a gate, an escalate or a notify step: rendered when the step runs, then
checked — a number must be a finite number, a severity one of the scale's
names or aliases — with the step's place in the file in the error.
"""

from __future__ import annotations

import math
from typing import Any

from runbook.errors import StepError
from runbook.model import Loc, Scale
from runbook.sqltemplate import template


def number(value: Any, scope: dict[str, Any], loc: Loc, what: str) -> Any:
    """A threshold as given, or its template rendered to a finite number."""
    if not isinstance(value, str) or not template.is_template(value):
        return value
    return parse_number(template.render_text(value, scope).strip(), value, loc, what)


def parse_number(text: str, value: str, loc: Loc, what: str) -> int | float:
    """Rendered text as a finite number (`value`: the template it came from)."""
    try:
        found = float(text)
    except ValueError:
        raise StepError(f"{loc}: {what} {value!r} is {text!r}, not a number") from None
    if not math.isfinite(found):
        raise StepError(f"{loc}: {what} {value!r} is {text!r}, not a finite number")
    return int(found) if found.is_integer() and "." not in text else found


def severity(value: str, scope: dict[str, Any], scale: Scale, loc: Loc, what: str) -> str:
    """A severity as given, or its template rendered to a name of the scale
    (an alias gives the level's own name)."""
    if not template.is_template(value):
        return value
    text = template.render_text(value, scope).strip()
    level = scale.get(text)
    if level is None:
        raise StepError(
            f"{loc}: {what} {value!r} is {text!r}, not a severity of the scale "
            f"({', '.join(scale.names())})"
        )
    return level.name
