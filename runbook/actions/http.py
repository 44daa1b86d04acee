"""`http`: a request to a health endpoint or an API."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from runbook import variables
from runbook.actions.base import ANY, Field
from runbook.context import StepContext
from runbook.errors import StepError
from runbook.load.loader import env_or_value
from runbook.model import Step
from runbook.redact import Redactor
from runbook.results import HttpResult, Result
from runbook.sqltemplate import template
from runbook.sqltemplate.template import Kind

if TYPE_CHECKING:
    import urllib.request

TEMPLATES: tuple[Field, ...] = (
    Field(("http", "url"), Kind.TEXT),
    Field(("http", "headers", ANY), Kind.TEXT),
    Field(("http", "body"), Kind.TEXT),
    Field(("http", "json"), Kind.TEXT),
)


def may_write(step: Step) -> bool:
    method = str(step.body.get("method", "GET")).upper()
    return bool(step.options.get("writes", method not in ("GET", "HEAD")))


def _request(ctx: StepContext) -> tuple[urllib.request.Request, dict[str, Any]]:
    import urllib.request  # only when a playbook makes requests: it is slow to import

    body = ctx.step.body
    url = template.render_text(body["url"], ctx.scope)
    headers = {}
    secrets: set[str] = set()
    for name, value in body.get("headers", {}).items():
        if isinstance(value, str):  # the playbook's own text: a template
            headers[name] = template.render_text(value, ctx.scope)
            continue
        # A value from the environment is data, never a template: `{{ … }}` in it
        # stays text (validation never saw it, so it must not run).
        resolved = variables.resolve(env_or_value(value), f"header {name}", secrets)
        headers[name] = str(resolved)
    data = None
    if "json" in body:
        data = json.dumps(template.render_value(body["json"], ctx.scope), default=str).encode()
        headers.setdefault("Content-Type", "application/json")
    elif "body" in body:
        data = template.render_text(body["body"], ctx.scope).encode()
    method = body.get("method", "POST" if data is not None else "GET")
    if not url.startswith(("http://", "https://")):
        raise StepError(f"only http:// and https:// URLs can be requested, not {url!r}")
    return urllib.request.Request(url, data=data, headers=headers, method=method), {
        "secrets": secrets
    }


class _Answer(HttpResult):
    """An answer whose record masks the secrets this step sent.

    A server may echo a `{from_env}` header back. Gates and templates see the
    answer as it came; what is shown and journaled (`serialize`) masks the
    step's own secrets, which the run's redactor learns only once the step
    has ended."""

    def __init__(self, shield: Redactor, *args: Any) -> None:
        super().__init__(*args)
        self._shield = shield

    def serialize(self, sample: int | None = 20) -> dict[str, Any]:
        shown: dict[str, Any] = self._shield.value(super().serialize(sample))
        return shown


def run(ctx: StepContext) -> Result:
    import ssl

    from runbook.alerts import httpclient

    request, extra = _request(ctx)
    ctx.secrets.update(extra["secrets"])
    ctx.rendered = [f"{request.get_method()} {request.full_url}"]
    context = None
    if not ctx.step.body.get("verify_tls", True):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    started = time.perf_counter()
    try:
        # A redirect keeps the method and the body (urllib's own handler turned
        # a POST into a GET without its body); headers stay with their origin.
        answer = httpclient.request(
            request.full_url,
            method=request.get_method(),
            data=request.data if isinstance(request.data, bytes) else None,
            headers=dict(request.header_items()),
            timeout=ctx.timeout,
            follow_redirects=True,
            context=context,
        )
    except httpclient.HttpError as exc:
        raise StepError(
            f"{request.get_method()} {request.full_url} failed: {exc}", mid_flight=exc.sent
        ) from None
    status = answer.status
    ok_status = ctx.step.body.get("ok_status")
    ok = status in ok_status if ok_status else 200 <= status < 400
    result = _Answer(
        Redactor(extra["secrets"]),
        answer.url,
        status,
        answer.headers,
        answer.body.decode("utf-8", errors="replace"),
        (time.perf_counter() - started) * 1000,
        ok,
    )
    ctx.note = f"HTTP {status}" + (
        f" after {answer.redirects} redirect(s)" if answer.redirects else ""
    )
    if not ok:
        raise StepError(
            f"{request.get_method()} {request.full_url} answered HTTP {status}", result=result
        )
    return result


def preview(ctx: StepContext) -> str:
    request, _ = _request(ctx)
    return f"{request.get_method()} {request.full_url}"
