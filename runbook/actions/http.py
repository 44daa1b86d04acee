"""`http`: a request to a health endpoint or an API."""

from __future__ import annotations

from runbook.actions.base import ANY, Field
from runbook.model import Step
from runbook.template import Kind

TEMPLATES: tuple[Field, ...] = (
    Field(("http", "url"), Kind.TEXT),
    Field(("http", "headers", ANY), Kind.TEXT),
    Field(("http", "body"), Kind.TEXT),
    Field(("http", "json"), Kind.TEXT),
)


def may_write(step: Step) -> bool:
    method = str(step.body.get("method", "GET")).upper()
    return bool(step.options.get("writes", method not in ("GET", "HEAD")))
