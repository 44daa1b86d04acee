"""Steps that cannot be transactional (autocommit SQL, a command, a writing
request): caught mid-flight, their outcome is unknown, never guessed; an
autocommit step's statements are counted as each one ends and commits."""

from __future__ import annotations

from collections.abc import Callable

from runbook.actions import REGISTRY
from runbook.engine.ports import Run
from runbook.outcome import Outcome, Status
from runbook.pg.lost import connection_lost
from runbook.plan import PlannedStep

SQL_KINDS = frozenset({"query", "sql", "sql_file"})


def non_transactional(ps: PlannedStep) -> bool:
    """A step that may act but cannot run in a transaction (autocommit SQL, a
    command, a writing request): a crash mid-flight leaves its effect unknown."""
    step = ps.step
    if ps.kind in SQL_KINDS:
        return bool(step.options.get("autocommit")) and REGISTRY[ps.kind].may_write(step)
    return ps.kind in ("shell", "http") and REGISTRY[ps.kind].may_write(step)


def caught_mid_flight(error: BaseException | None) -> bool:
    """An interruption, a lost connection, or the step stopped while it may
    have been acting (a command killed at its timeout, a request sent and
    never answered, a statement whose connection runbook cut): not an error
    the step itself met. Whether it took effect cannot be told."""
    return (
        isinstance(error, KeyboardInterrupt)
        or connection_lost(error)
        or bool(getattr(error, "mid_flight", False))
    )


def mark_unknown(outcome: Outcome, ps: PlannedStep, error: BaseException | None) -> None:
    """A failed step that cannot be transactional, caught mid-flight: unknown."""
    if outcome.status is Status.FAILED and caught_mid_flight(error) and non_transactional(ps):
        outcome.status = Status.UNKNOWN
        outcome.reason = outcome.error = (
            f"{outcome.reason} — outcome unknown: the step was caught mid-flight and cannot "
            "be transactional, so whether it took effect cannot be known"
        )


def progress(run: Run, seq: int) -> Callable[[int, int], None]:
    """What an autocommit step reports as each of its statements ends: the
    journal hears it at once, so a crash before the next one leaves the count."""

    def record(done: int, total: int) -> None:
        change = {"statements": {"done": done, "total": total}}
        run.recorder.steps_updated([(seq, change)], "step.progress")

    return record


def count_statements(outcome: Outcome, done: int, total: int) -> None:
    """An autocommit step's statements ran one at a time, each committed as it
    ended: say how many ended, and if one failed, which (1-based, of N) and that
    those before it stay done (nothing can undo them)."""
    outcome.statements = (done, total)
    if outcome.status is not Status.FAILED or done >= total:
        return
    if done == 0:
        before = "none ran before it"
    elif done == 1:
        before = "statement 1 ended before it and stays done (autocommit)"
    else:
        before = f"statements 1-{done} ended before it and stay done (autocommit)"
    outcome.reason = outcome.error = f"statement {done + 1} of {total}: {outcome.reason}; {before}"
