"""`--exit-codes nagios`: the output of a monitoring plugin.

The first line is what Nagios, Icinga and their kin show and graph:
`RUNBOOK CRITICAL - <summary> | <perfdata>`; the lines after it are the long
output (every step, as the plain report gives it). Perfdata follows the plugin
guidelines: `'label'=value[UOM];warn;crit;min;max`, labels quoted, no `'` or
`=` inside them, numbers only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from typing import Any

from runbook.outcome import Outcome, RunOutcome, RunStatus, Status

STATES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
_LABEL_UNSAFE = re.compile(r"['=\s]+")


def status_line(outcomes: Sequence[RunOutcome], code: int) -> str:
    """`RUNBOOK STATE - summary | perfdata`, on one line."""
    state = STATES.get(code, "UNKNOWN")
    perf = " ".join(perfdata(outcomes))
    line = f"RUNBOOK {state} - {summary(outcomes)}"
    return f"{line} | {perf}" if perf else line


def unknown_line(message: str) -> str:
    """What a plugin says when it could not check at all (exit 3)."""
    first = next((x.strip() for x in message.splitlines() if x.strip()), "internal error")
    return f"RUNBOOK UNKNOWN - {first}"


def summary(outcomes: Sequence[RunOutcome]) -> str:
    if not outcomes:
        return "no target ran"
    if len(outcomes) == 1:
        return _one(outcomes[0])
    clean = sum(1 for o in outcomes if o.status is RunStatus.OK)
    worst = sorted(outcomes, key=lambda o: o.nagios, reverse=True)
    bad = "; ".join(f"{o.target}: {_finding(o)}" for o in worst if o.status is not RunStatus.OK)
    head = f"{outcomes[0].playbook}: {clean} of {len(outcomes)} targets OK"
    return f"{head}; {bad}" if bad else head


def _one(run: RunOutcome) -> str:
    return f"{run.playbook} on {run.target}: {_finding(run)}"


def _finding(run: RunOutcome) -> str:
    """The run's status, its worst severity, and the first thing that went wrong."""
    severity = f" ({run.severity})" if run.severity else ""
    for step in run.steps:
        failing = [g for g in step.gates if not g.passed]
        if failing:
            return f"{run.status.value}{severity}: {failing[0].message or failing[0].name}"
        if step.status in (Status.FAILED, Status.UNKNOWN, Status.DECLINED) and step.undoes is None:
            return (
                f"{run.status.value}: step {step.number} {step.name}: {step.error or step.reason}"
            )
    return f"{run.status.value}{severity}: {run.reason}"


def perfdata(outcomes: Sequence[RunOutcome]) -> Iterator[str]:
    """Per target: numeric results (a query's one value, a classified value),
    failing gates, each step's duration, the run's."""
    several = len(outcomes) > 1
    for run in outcomes:
        prefix = f"{run.target}/" if several else ""
        gates = [g for s in run.steps for g in s.gates]
        for step in run.steps:
            if step.undoes is not None or step.status in (Status.SKIPPED, Status.NOT_RUN):
                continue
            value = _value(step)
            if value is not None:
                yield _item(f"{prefix}{step.key}", value)
            yield _item(f"{prefix}{step.key} ms", round(step.duration_ms, 3), "ms", low=0)
        if gates:
            failed = sum(1 for g in gates if not g.passed)
            yield _item(f"{prefix}gates failed", failed, "", crit="0", low=0, high=len(gates))
        yield _item(f"{prefix}duration", round(run.duration_ms / 1000, 3), "s", low=0)


def _value(step: Outcome) -> float | None:
    """A step's one number: a classified value, or a query's single value."""
    result = step.result or {}
    if step.kind == "classify":
        return _number(result.get("value"))
    rows = result.get("rows")
    if step.kind == "query" and isinstance(rows, list) and len(rows) == 1:
        row = rows[0]
        if isinstance(row, dict) and len(row) == 1:
            return _number(next(iter(row.values())))
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):  # numeric comes back from the journal's JSON as text
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _item(
    label: str,
    value: float,
    unit: str = "",
    *,
    crit: str = "",
    low: float | None = None,
    high: float | None = None,
) -> str:
    name = _LABEL_UNSAFE.sub("_", label).strip("_") or "value"
    fields = ["", crit, "" if low is None else _plain(low), "" if high is None else _plain(high)]
    tail = ";".join(fields).rstrip(";")
    return f"'{name}'={_plain(value)}{unit}" + (f";{tail}" if tail else "")


def _plain(number: float) -> str:
    """A number as plugins parse it: no exponent, no trailing zeros."""
    if float(number).is_integer():
        return str(int(number))
    return f"{number:.6f}".rstrip("0").rstrip(".")
