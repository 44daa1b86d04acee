"""The Markdown report: a table per section, a row per step, cells that
cannot break their table or carry HTML."""

from __future__ import annotations

from runbook.runreport.document import Document, Item
from runbook.runreport.markdown import cell, to_markdown
from tests.runreport.htmlcheck import escaped
from tests.runreport.samples import drill


def test_a_row_per_step_with_times_and_targets() -> None:
    md = to_markdown(drill(4))
    assert "| # | step | run | kind | status | at | took | target | verdict | note |" in md
    assert (
        "| 1 | step 1 " in md
        and "| procedure | sql | ok | 10.0 s | 8.000 s | 5.000 s | fail | - |" in md
    )
    assert "| 3 | step 3 " in md and "| failed | 30.0 s | 8.000 s | 5.000 s | fail | boom |" in md
    assert "## Objectives" in md and "| time to recover | 60.0 min | - | not reached |" in md
    for title in ("People", "Answers", "Findings", "Corrective actions", "Sign-offs"):
        assert f"## {title}" in md
    assert "| alice | commander |" in md
    escaped(md)


def test_columns_with_nothing_in_them_are_left_out() -> None:
    doc = Document(
        "t", "run", {"run": "r1"}, items=(Item("1", "a", "sql", "main", "ok", 0.0, 1.5),)
    )
    md = to_markdown(doc)
    assert "| # | step | kind | status | at | took |" in md
    assert "| 1 | a | sql | ok | 0.000 s | 1.500 s |" in md


def test_a_cell_stays_in_its_table() -> None:
    assert cell("a | b\nc") == "a \\| b c"
    assert cell(None) == "-" and cell("") == "-"
    assert cell("<i>x</i> & y") == "&lt;i&gt;x&lt;/i&gt; &amp; y"
