"""`classify`: a value → a severity by ordered thresholds."""

from __future__ import annotations

from typing import Any

from runbook import rendered
from runbook.actions.base import ANY, Field
from runbook.context import StepContext
from runbook.errors import StepError
from runbook.model import Step
from runbook.results import Result, ValueResult
from runbook.sqltemplate import template
from runbook.sqltemplate.template import Kind

TEMPLATES: tuple[Field, ...] = (
    Field(("classify", "value"), Kind.EXPR),
    *(
        Field(("classify", "thresholds", ANY, key), Kind.TEXT)
        for key in ("above", "at_least", "below", "at_most", "equals", "severity")
    ),
    Field(("classify", "default"), Kind.TEXT),
    Field(("classify", "fail_at"), Kind.TEXT),
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


def _severity(ctx: StepContext, value: str | None, what: str) -> str | None:
    if value is None:
        return None
    return rendered.severity(value, ctx.scope, ctx.scale, ctx.step.loc, what)


def _bound(ctx: StepContext, key: str, value: Any, what: str) -> Any:
    """A threshold's comparison value, rendered when templated: a number (for
    `equals`, text that is not a number stays text)."""
    if key not in _TESTS or not isinstance(value, str) or not template.is_template(value):
        return value
    if key == "equals":
        text = template.render_text(value, ctx.scope).strip()
        try:
            return rendered.parse_number(text, value, ctx.step.loc, what)
        except StepError:
            return text
    return rendered.number(value, ctx.scope, ctx.step.loc, what)


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
    severity = _severity(ctx, body.get("default"), "default")
    label = None
    for i, threshold in enumerate(body["thresholds"], start=1):
        concrete = {k: _bound(ctx, k, t, f"threshold {i} {k}") for k, t in threshold.items()}
        if _matches(value, concrete):
            severity = _severity(ctx, threshold["severity"], f"threshold {i} severity")
            label = threshold.get("label")
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
    fail_at = _severity(ctx, body.get("fail_at"), "fail_at")
    return ValueResult(
        "classify", value=value, severity=severity, label=label, message=text, fail_at=fail_at
    )


def preview(ctx: StepContext) -> str:
    return f"classify: {ctx.step.body['value']}"
