"""The PostgreSQL journal's part of drills: the drills and their notes, read
back (both are written as events, like every mirrored table)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    """Mixed into runbook.journal.postgres.PostgresStore."""

    if TYPE_CHECKING:

        def query(
            self, text: str, params: Sequence[Any] | Mapping[str, Any] = ()
        ) -> list[dict[str, Any]]: ...

    def drill(self, drill_id: str) -> DrillRecord | None:
        """A drill by id or unique prefix."""
        rows = self.query(
            "SELECT * FROM drills WHERE id = %(id)s OR starts_with(id, %(id)s) LIMIT 2",
            {"id": drill_id},
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
        rows = self.query(
            "SELECT * FROM drills WHERE (%(p)s::text IS NULL OR playbook_path = %(p)s)"
            " AND (%(n)s::text IS NULL OR %(n)s IN (playbook, playbook_path, exercise))"
            " AND (cardinality(%(s)s::text[]) = 0 OR status = ANY(%(s)s::text[]))"
            " ORDER BY started_at DESC, id DESC LIMIT %(limit)s",
            {"p": playbook_path, "n": named, "s": list(statuses), "limit": limit},
        )
        return records_of(DrillRecord, rows)

    def drill_notes(self, drill_id: str) -> list[DrillNoteRecord]:
        rows = self.query(
            "SELECT * FROM drill_notes WHERE drill_id = %s ORDER BY at, id", (drill_id,)
        )
        return records_of(DrillNoteRecord, rows)


class FleetRuns:
    """The runs one fleet run grouped, mixed into runbook.journal.postgres.PostgresStore."""

    if TYPE_CHECKING:

        def query(
            self, text: str, params: Sequence[Any] | Mapping[str, Any] = ()
        ) -> list[dict[str, Any]]: ...

    def fleet_runs(self, fleet_id: str) -> list[RunRecord]:
        rows = self.query(
            "SELECT * FROM runs WHERE selection::jsonb ->> 'fleet' = %s ORDER BY target",
            (fleet_id,),
        )
        return records_of(RunRecord, rows)


class ApprovalTables:
    """Approvals and their votes, mixed into runbook.journal.postgres.PostgresStore."""

    if TYPE_CHECKING:

        def query(
            self, text: str, params: Sequence[Any] | Mapping[str, Any] = ()
        ) -> list[dict[str, Any]]: ...

    def approvals(
        self, *, run_ids: tuple[str, ...] = (), status: str | None = None, limit: int = 100
    ) -> list[ApprovalRecord]:
        rows = self.query(
            "SELECT * FROM approvals WHERE (cardinality(%(runs)s::text[]) = 0"
            " OR run_id = ANY(%(runs)s::text[])) AND (%(s)s::text IS NULL OR status = %(s)s)"
            " ORDER BY requested_at DESC, id DESC LIMIT %(limit)s",
            {"runs": list(run_ids), "s": status, "limit": limit},
        )
        return records_of(ApprovalRecord, rows)

    def votes(self, approval_id: str) -> list[VoteRecord]:
        rows = self.query(
            "SELECT * FROM approval_votes WHERE approval_id = %s ORDER BY at, id", (approval_id,)
        )
        return records_of(VoteRecord, rows)
