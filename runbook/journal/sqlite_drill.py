"""The SQLite journal's part of drills: the drills and their notes, read back
(both are written as events, like every mirrored table)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from runbook.journal.records import (
    ApprovalRecord,
    DrillNoteRecord,
    DrillRecord,
    RunRecord,
    VoteRecord,
    records_of,
)


class DrillTables:
    """Mixed into runbook.journal.sqlite.Journal."""

    if TYPE_CHECKING:

        def query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]: ...

    def drill(self, drill_id: str) -> DrillRecord | None:
        """A drill by id or unique prefix."""
        rows = self.query(
            "SELECT * FROM drills WHERE id = ?1 OR id LIKE ?2 || '%' ESCAPE '\\' LIMIT 2",
            (drill_id, _like(drill_id)),
        )
        exact = [r for r in rows if r["id"] == drill_id]
        found = exact or rows
        return DrillRecord.from_row(found[0]) if len(found) == 1 else None

    def drills(
        self,
        playbook_path: str | None = None,
        limit: int | None = 50,
        statuses: tuple[str, ...] = (),
        named: str | None = None,
    ) -> list[DrillRecord]:
        # One placeholder a status (a few, of our own): the values bound.
        among = f" AND status IN ({', '.join('?' * len(statuses))})" if statuses else ""
        rows = self.query(
            "SELECT * FROM drills WHERE (? IS NULL OR playbook_path = ?)"
            " AND (? IS NULL OR ? IN (playbook, playbook_path, exercise))"
            + among
            + " ORDER BY started_at DESC, id DESC LIMIT ?",
            (
                playbook_path,
                playbook_path,
                named,
                named,
                *statuses,
                -1 if limit is None else limit,
            ),
        )
        return records_of(DrillRecord, rows)

    def drill_notes(self, drill_id: str) -> list[DrillNoteRecord]:
        rows = self.query(
            "SELECT * FROM drill_notes WHERE drill_id = ? ORDER BY at, id", (drill_id,)
        )
        return records_of(DrillNoteRecord, rows)


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class FleetRuns:
    """The runs one fleet run grouped, mixed into runbook.journal.sqlite.Journal."""

    if TYPE_CHECKING:

        def query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]: ...

    def fleet_runs(self, fleet_id: str) -> list[RunRecord]:
        rows = self.query(
            "SELECT * FROM runs WHERE json_extract(selection, '$.fleet') = ? ORDER BY target",
            (fleet_id,),
        )
        return records_of(RunRecord, rows)


class ApprovalTables:
    """Approvals and their votes, mixed into runbook.journal.sqlite.Journal."""

    if TYPE_CHECKING:

        def query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]: ...

    def approvals(
        self, *, run_ids: tuple[str, ...] = (), status: str | None = None, limit: int = 100
    ) -> list[ApprovalRecord]:
        runs = list(run_ids)
        where = f"run_id IN ({', '.join('?' * len(runs))})" if runs else "1 = 1"
        rows = self.query(
            f"SELECT * FROM approvals WHERE {where} AND (? IS NULL OR status = ?)"
            " ORDER BY requested_at DESC, id DESC LIMIT ?",
            (*runs, status, status, limit),
        )
        return records_of(ApprovalRecord, rows)

    def votes(self, approval_id: str) -> list[VoteRecord]:
        rows = self.query(
            "SELECT * FROM approval_votes WHERE approval_id = ? ORDER BY at, id", (approval_id,)
        )
        return records_of(VoteRecord, rows)
