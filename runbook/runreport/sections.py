"""A document's tables, as the Markdown and the HTML both show them: a title,
a header, rows of values (None where there is nothing to say). A column that
says nothing in any row is left out (a plain run has no targets, no run
labels)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runbook.runreport.document import Document, Item
from runbook.runreport.units import duration


@dataclass(frozen=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    status: tuple[int, ...] = ()  # the columns whose values also style their cells


def label(key: str) -> str:
    return key.replace("_", " ")


def facts(doc: Document) -> list[tuple[str, Any]]:
    return [(label(k), v) for k, v in doc.facts.items() if v is not None and v != ""]


def _empty(value: Any) -> bool:
    return value is None or value == ""


def _at(row: tuple[Any, ...], n: int) -> Any:
    return row[n] if n < len(row) else None


def trimmed(table: Table) -> Table:
    """The table without the columns empty in every row (the first one stays)."""
    keep = [
        n
        for n in range(len(table.header))
        if n == 0 or any(not _empty(_at(row, n)) for row in table.rows)
    ]
    status = tuple(keep.index(n) for n in table.status if n in keep)
    return Table(
        table.title,
        tuple(table.header[n] for n in keep),
        tuple(tuple(_at(row, n) for n in keep) for row in table.rows),
        status,
    )


def _seconds(value: float | None) -> str | None:
    return None if value is None else duration(value)


def _step_row(i: Item) -> tuple[Any, ...]:
    return (
        i.number,
        i.name + (" (rollback)" if i.phase == "rollback" else ""),
        i.run,
        i.kind,
        i.status,
        _seconds(i.start_s),
        _seconds(i.duration_s),
        _seconds(i.target_s),
        i.verdict,
        i.error or i.reason,
    )


STEP_HEADER = ("#", "step", "run", "kind", "status", "at", "took", "target", "verdict", "note")


def steps(doc: Document) -> Table:
    return trimmed(Table("Steps", STEP_HEADER, tuple(_step_row(i) for i in doc.items), (4, 8)))


def objectives(doc: Document) -> Table | None:
    if not doc.objectives:
        return None
    rows = tuple(
        (o.name, _seconds(o.target_s), _seconds(o.actual_s), o.status) for o in doc.objectives
    )
    return Table("Objectives", ("objective", "target", "actual", "result"), rows, (3,))


def after_timeline(doc: Document) -> list[Table]:
    """People, answers, notifications, findings, corrective actions, sign-offs,
    then the document's own sections: those with rows."""
    tables = [
        Table("People", ("name", "role"), tuple((p.name, p.role) for p in doc.participants)),
        Table(
            "Answers",
            ("#", "step", "by", "answered after", "answer"),
            tuple(
                (a.number, a.step, a.by, _seconds(a.answered_after_s), a.answer)
                for a in doc.answers
            ),
        ),
        Table(
            "Incidents and notifications",
            ("what", "channel", "state", "at", "run"),
            tuple((n.what, n.channel, n.state, n.at, n.run) for n in doc.notifications),
        ),
        Table(
            "Findings", ("finding", "by", "at"), tuple((f.text, f.by, f.at) for f in doc.findings)
        ),
        Table(
            "Corrective actions",
            ("action", "owner", "due", "status", "by", "at"),
            tuple((a.text, a.owner, a.due, a.status, a.by, a.at) for a in doc.actions),
        ),
        Table(
            "Sign-offs",
            ("by", "at", "comment"),
            tuple((s.by, s.at, s.text) for s in doc.signoffs),
        ),
        *(Table(s.title, s.columns, s.rows) for s in doc.sections),
    ]
    return [trimmed(t) for t in tables if t.rows]
