"""The PostgreSQL journal's readers of runs, steps, incidents, deliveries and
authorizations, mixed into runbook.journal.postgres.PostgresStore (which
writes them, as events, and answers `query`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runbook.journal.events import fold_steps, planned_note_in, unique_run
from runbook.journal.records import (
    UNSENT,
    AuthorizationRecord,
    DeliveryRecord,
    IncidentRecord,
    RunRecord,
    StepRecord,
    first_of,
    records_of,
)


class RunTables:
    """Runs and their steps, incidents, deliveries, authorizations: read."""

    if TYPE_CHECKING:

        def query(
            self, text: str, params: Sequence[Any] | Mapping[str, Any] = ()
        ) -> list[dict[str, Any]]: ...

    def run(self, run_id: str) -> RunRecord | None:
        rows = self.query(
            "SELECT * FROM runs WHERE left(id, length(%s)) = %s ORDER BY started_at",
            (run_id, run_id),
        )
        return unique_run(rows, self.steps)

    def runs(
        self,
        *,
        playbook: str | None = None,
        target: str | None = None,
        status: str | None = None,
        since: str | None = None,
        limit: int = 50,
    ) -> list[RunRecord]:
        rows = self.query(
            "SELECT * FROM runs WHERE (%(p)s::text IS NULL OR playbook = %(p)s)"
            " AND (%(t)s::text IS NULL OR target = %(t)s)"
            " AND (%(s)s::text IS NULL OR status = %(s)s)"
            " AND (%(since)s::text IS NULL OR started_at >= %(since)s)"
            " ORDER BY started_at DESC LIMIT %(limit)s",
            {"p": playbook, "t": target, "s": status, "since": since, "limit": limit},
        )
        return records_of(RunRecord, rows)

    def running_on(self, host: str) -> list[RunRecord]:
        rows = self.query("SELECT * FROM runs WHERE status = 'running' AND host = %s", (host,))
        return records_of(RunRecord, rows)

    def continuation(self, run_id: str) -> RunRecord | None:
        rows = self.query(
            "SELECT * FROM runs WHERE continues = %s ORDER BY started_at LIMIT 1", (run_id,)
        )
        return first_of(RunRecord, rows)

    def steps(self, run_id: str) -> list[StepRecord]:
        rows = self.query("SELECT payload FROM events WHERE stream = %s ORDER BY pos", (run_id,))
        return fold_steps(run_id, (r["payload"] for r in rows))

    def incident(self, incident_id: int) -> IncidentRecord | None:
        rows = self.query("SELECT * FROM incidents WHERE id = %s", (incident_id,))
        return first_of(IncidentRecord, rows)

    def open_incident(self, key: str) -> IncidentRecord | None:
        rows = self.query("SELECT * FROM incidents WHERE key = %s AND status <> 'resolved'", (key,))
        return first_of(IncidentRecord, rows)

    def last_resolved(self, key: str) -> IncidentRecord | None:
        rows = self.query(
            "SELECT * FROM incidents WHERE key = %s AND status = 'resolved' ORDER BY id DESC LIMIT 1",
            (key,),
        )
        return first_of(IncidentRecord, rows)

    def incidents(
        self,
        *,
        only_open: bool,
        keys: Collection[str] | None = None,
        playbook: str | None = None,
    ) -> list[IncidentRecord]:
        wanted = sorted(keys) if keys is not None else None
        rows = self.query(
            "SELECT * FROM incidents WHERE (NOT %s OR status <> 'resolved')"
            " AND (%s::text[] IS NULL OR key = ANY(%s::text[]))"
            " AND (%s::text IS NULL OR playbook = %s) ORDER BY id DESC",
            (only_open, wanted, wanted, playbook, playbook),
        )
        return records_of(IncidentRecord, rows)

    def incidents_due(self, now: str) -> list[IncidentRecord]:
        rows = self.query(
            "SELECT * FROM incidents WHERE status = 'open' AND next_at IS NOT NULL"
            " AND next_at <= %s ORDER BY id",
            (now,),
        )
        return records_of(IncidentRecord, rows)

    def delivery(self, delivery_id: int) -> DeliveryRecord | None:
        rows = self.query("SELECT * FROM deliveries WHERE id = %s", (delivery_id,))
        return first_of(DeliveryRecord, rows)

    def deliveries_of(self, incident_id: int) -> list[DeliveryRecord]:
        rows = self.query(
            "SELECT * FROM deliveries WHERE incident_id = %s ORDER BY id", (incident_id,)
        )
        return records_of(DeliveryRecord, rows)

    def unsent_deliveries(self) -> list[DeliveryRecord]:
        rows = self.query(
            "SELECT * FROM deliveries WHERE status = ANY(%s) ORDER BY id",
            ([status.value for status in UNSENT],),
        )
        return records_of(DeliveryRecord, rows)

    def loose_deliveries(self) -> list[DeliveryRecord]:
        rows = self.query(
            "SELECT * FROM deliveries WHERE incident_id IS NULL AND status <> 'delivered'"
            " ORDER BY id"
        )
        return records_of(DeliveryRecord, rows)

    def planned_note(self, run_id: str | None, delivery_id: int) -> dict[str, Any] | None:
        # `IS NULL` or `=`, both by the events' run index (IS NOT DISTINCT FROM by none).
        needle = f'"id":{delivery_id}'
        of_run, params = ("IS NULL", (needle,)) if run_id is None else ("= %s", (run_id, needle))
        events = self.query(
            f"SELECT payload FROM events WHERE run_id {of_run}"
            " AND kind = 'delivery.planned' AND strpos(payload, %s) > 0 ORDER BY seq DESC",
            params,
        )
        return planned_note_in(events, delivery_id)

    def authorizations(
        self, playbook: str | None = None, target: str | None = None
    ) -> list[AuthorizationRecord]:
        rows = self.query(
            "SELECT * FROM authorizations WHERE (%(p)s::text IS NULL OR playbook = %(p)s)"
            " AND (%(t)s::text IS NULL OR target = %(t)s) ORDER BY granted_at DESC, id",
            {"p": playbook, "t": target},
        )
        return records_of(AuthorizationRecord, rows)
