"""`classify`: a value → a severity by ordered thresholds."""

from __future__ import annotations

from typing import Any

from runbook.actions.base import Field
from runbook.context import StepContext
from runbook.errors import StepError
from runbook.model import Step
from runbook.results import Result, ValueResult
from runbook.sqltemplate import template
from runbook.sqltemplate.template import Kind

TEMPLATES: tuple[Field, ...] = (
    Field(("classify", "value"), Kind.EXPR),
    Field(("classify", "message"), Kind.TEXT, frozenset({"value", "severity", "label"})),
)


def may_write(step: Step) -> bool:
    return False


_TESTS = {
    "above": lambda v, t: v > t,
    "at_least": lambda v, t: v >= t,
    "below": lambda v, t: v < t,
    "at_most": lambda v, t: v <= t,
    "equals": lambda v, t: v == t,
}


def _matches(value: Any, threshold: dict[str, Any]) -> bool:
    tests = [(k, t) for k, t in threshold.items() if k in _TESTS]
    try:
        return all(_TESTS[k](value, t) for k, t in tests)
    except TypeError:
        raise StepError(f"cannot compare {value!r} with {tests[0][1]!r}") from None


def run(ctx: StepContext) -> Result:
    body = ctx.step.body
    value = template.evaluate(body["value"], ctx.scope)
    if value is None:
        raise StepError(f"`{body['value']}` has no value to classify (null)")
    if (
        not isinstance(value, bool)
        and hasattr(value, "__float__")
        and not isinstance(value, int | float)
    ):
        value = float(value)  # Decimal from the database
    severity = body.get("default")
    label = None
    for threshold in body["thresholds"]:
        if _matches(value, threshold):
            severity, label = threshold["severity"], threshold.get("label")
            break
    message = body.get("message")
    text = (
        template.render_text(
            message, {**ctx.scope, "value": value, "severity": severity, "label": label}
        )
        if message
        else ""
    )
    ctx.severity = severity
    ctx.note = f"{value} → {severity or 'unclassified'}" + (f" ({label})" if label else "")
    return ValueResult("classify", value=value, severity=severity, label=label, message=text)


def preview(ctx: StepContext) -> str:
    return f"classify: {ctx.step.body['value']}"
