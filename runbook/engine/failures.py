"""Exceptions → what a person reads: error text and SQLSTATE; outcomes redacted."""

from __future__ import annotations

import time

import psycopg

from runbook.errors import AwaitingApproval, Declined, RunbookError, StepError, TemplateError
from runbook.outcome import Outcome, Status
from runbook.pg.db import StepTimeout
from runbook.plan import PlannedStep
from runbook.redact import Redactor


def _one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return " | ".join(lines[:4]) if lines else ""


def error_text(error: BaseException, playbook_kind: str, target: str) -> tuple[str, str | None]:
    """The message and SQLSTATE of an error that ended a step."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted by the operator (the running statement was cancelled)", None
    if isinstance(error, psycopg.Error):
        sqlstate = error.sqlstate
        diag = error.diag
        text = diag.message_primary or _one_line(str(error)) or type(error).__name__
        if sqlstate == "25006":
            text += (
                f" — this playbook is kind: {playbook_kind} and runs read-only"
                if playbook_kind == "check"
                else " — this run is read-only (--check)"
            )
        elif sqlstate == "55P03":
            text += " (lock_timeout: another session holds the lock)"
        if diag.message_detail:
            text += f" ({diag.message_detail})"
        if isinstance(error, psycopg.OperationalError) and sqlstate is None:
            text = f"connection to target {target!r} lost: {text}"
        return text, sqlstate
    if isinstance(error, StepTimeout | StepError | TemplateError | RunbookError):
        return str(error), getattr(error, "sqlstate", None)
    return f"{type(error).__name__}: {error}", None


def failure(
    ps: PlannedStep,
    error: BaseException,
    started: float,
    attempts: int,
    playbook_kind: str,
    target: str,
) -> Outcome:
    text, sqlstate = error_text(error, playbook_kind, target)
    if isinstance(error, TemplateError):
        text = f"{ps.step.loc}: {text}"
    return Outcome(
        ps.index,
        ps.number,
        ps.name,
        ps.kind,
        _status_of(error),
        reason=text,
        error=text,
        sqlstate=sqlstate,
        duration_ms=(time.perf_counter() - started) * 1000,
        attempts=attempts,
        key=ps.step.key,
    )


def redacted(outcome: Outcome, redactor: Redactor) -> Outcome:
    """The outcome with every secret value replaced by ***."""
    if not redactor:
        return outcome
    r = redactor
    outcome.reason = r.text(outcome.reason)
    outcome.error = r.text(outcome.error) if outcome.error else None
    outcome.rendered = r.text(outcome.rendered) if outcome.rendered else None
    outcome.params = r.value(outcome.params)
    outcome.result = r.value(outcome.result)
    outcome.notices = r.value(outcome.notices)
    outcome.note = r.text(outcome.note)
    for gate in outcome.gates:
        gate.message = r.text(gate.message)
    return outcome


def _status_of(error: BaseException) -> Status:
    if isinstance(error, Declined):
        return Status.DECLINED
    if isinstance(error, AwaitingApproval):
        return Status.AWAITING_APPROVAL
    return Status.FAILED
