"""Plain output: the line per step, its details and its bounded table, exactly."""

from __future__ import annotations

import io

from runbook import report
from runbook.outcome import GateOutcome, Outcome, Status


def query_outcome(rows: list[dict[str, object]], columns: list[str], **extra: object) -> Outcome:
    fields: dict[str, object] = {
        "status": Status.OK,
        "duration_ms": 0.734,
        "rowcount": len(rows),
        "note": f"{len(rows)} row(s)",
        "attempts": 1,
        "result": {"kind": "query", "columns": columns, "rows": rows, "rows_total": len(rows)},
        "gates": [GateOutcome("count", True, "WARNING", "")],
    }
    fields.update(extra)
    return Outcome(3, "3", "Count the readings", "query", **fields)  # type: ignore[arg-type]


def printed(outcome: Outcome, quiet: bool = False) -> list[str]:
    out = io.StringIO()
    report.PlainReporter(out, quiet=quiet).step_finished(outcome)
    return out.getvalue().splitlines()


def test_one_column_is_listed_under_the_step() -> None:
    assert printed(query_outcome([{"n": 0}, {"n": 12}], ["n"])) == [
        "✓    3  Count the readings  [ok, 0.7 ms, 2 row(s)]",
        "       n",
        "       0",
        "       12",
    ]


def test_columns_are_aligned_and_long_cells_cut() -> None:
    rows = [{"n": 1, "label": "x", "note": None}, {"n": 100, "label": "y" * 60, "note": "a\nb"}]
    assert printed(query_outcome(rows, ["n", "label", "note"])) == [
        "✓    3  Count the readings  [ok, 0.7 ms, 2 row(s)]",
        "       n    label                                     note",
        "       1    x                                         NULL",
        "       100  " + "y" * 39 + "…  a b",
    ]


def test_rows_past_the_bound_are_counted_not_shown() -> None:
    rows = [{"n": i} for i in range(25)]
    outcome = query_outcome(rows, ["n"])
    assert outcome.result is not None
    outcome.result["rows_total"] = 25
    lines = printed(outcome)
    assert lines[-1] == "       (15 more row(s))"
    assert len(lines) == 1 + 1 + report.MAX_TABLE_ROWS + 1


def test_a_steps_max_rows_is_how_many_rows_are_shown() -> None:
    rows = [{"n": i} for i in range(30)]
    outcome = query_outcome(rows[:25], ["n"], shown_rows=25)
    assert outcome.result is not None
    outcome.result["rows_total"] = 30
    lines = printed(outcome)
    assert lines[2:27] == [f"       {i}" for i in range(25)]
    assert lines[-1] == "       (5 more row(s))"
    fewer = printed(query_outcome(rows, ["n"], shown_rows=2))
    assert fewer[2:] == ["       0", "       1", "       (28 more row(s))"]


def test_a_failed_gate_says_why_and_quiet_output_keeps_only_failures() -> None:
    failed = query_outcome(
        [{"n": 7}],
        ["n"],
        status=Status.GATE_FAILED,
        reason="7 readings over the threshold",
        severity="WARNING",
        notices=["NOTICE: counting"],
    )
    assert printed(failed) == [
        "✗    3  Count the readings  [gate_failed, 0.7 ms, WARNING, 1 row(s)]",
        "       gate: 7 readings over the threshold",
        "       notice: NOTICE: counting",
        "       n",
        "       7",
    ]
    assert printed(failed, quiet=True) == printed(failed)[:3]
    assert printed(query_outcome([{"n": 1}], ["n"]), quiet=True) == []
