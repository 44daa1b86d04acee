"""The journal store: one interface, two backends, one factory.

Everything that reads or writes the journal goes through a `JournalStore`;
every SQL statement against the journal lives in a backend
(runbook.journal.sqlite, runbook.journal.postgres). `config_for` says where an
inventory's journal is (the inventory's `journal:`, or $RUNBOOK_JOURNAL: a file
path, or a postgresql:// DSN), `open_store` opens it.

Reads return typed records (runbook.journal.records): each backend turns its
rows into them with the record types' `from_row`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from runbook.errors import UsageError
from runbook.journal.events import Prepared
from runbook.journal.records import (
    ApprovalRecord,
    AuthorizationRecord,
    DeliveryRecord,
    DrillNoteRecord,
    DrillRecord,
    EventRecord,
    FireRecord,
    HeartbeatRecord,
    IncidentRecord,
    PauseRecord,
    RunRecord,
    StepRecord,
    VoteRecord,
)
from runbook.redact import redact_dsn

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from runbook.journal.checkpoint import Checkpoint, Signer
    from runbook.journal.verify import Report
    from runbook.journal.writer import Writer
    from runbook.model import Inventory

ENV = "RUNBOOK_JOURNAL"
_DSN = re.compile(r"^postgres(ql)?://", re.IGNORECASE)
# A libpq key=value DSN ("host=/tmp dbname=ops"): a file path never starts so.
_CONNINFO = re.compile(r"^\s*(host|hostaddr|dbname|user|port|service)\s*=", re.IGNORECASE)


@dataclass(frozen=True)
class StoreConfig:
    """Where a journal is: plain data, so a writer thread, a worker or a
    scheduler can open its own connection to the same journal."""

    backend: str  # "sqlite" or "postgresql"
    path: Path | None = None  # sqlite
    dsn: str | None = None  # postgresql; "embedded": the embedded server
    schema: str = "runbook"
    key_file: Path | None = None  # signs checkpoints
    root: Path | None = None  # the project's folder (where `dsn: embedded` keeps its server)

    @property
    def where(self) -> str:
        """For messages: the file, or the server and schema (never a password)."""
        if self.backend == "sqlite":
            return str(self.path)
        if self.dsn == "embedded":
            return f"the embedded PostgreSQL's database runbook_journal (schema {self.schema})"
        return f"{redact_dsn(self.dsn or '')} (schema {self.schema})"


class JournalStore(Protocol):
    """What a journal backend does. Appends are atomic and hash-chained;
    reads never see half an append."""

    config: StoreConfig
    signer: Signer | None

    @property
    def where(self) -> str: ...

    def close(self) -> None: ...

    # -- writing ---------------------------------------------------------------

    def writer(self) -> Writer:
        """The group-commit writer of runs' records on this store (runbook.journal.writer)."""
        ...

    def append(self, events: list[tuple[str, str | None, str, dict[str, Any]]]) -> list[int]:
        """Append events atomically; the ids of inserted incidents and deliveries."""
        ...

    def append_prepared(self, events: list[Prepared]) -> list[int]: ...

    # -- runs and steps --------------------------------------------------------

    def run(self, run_id: str) -> RunRecord | None:
        """A run by id or unique prefix, with its steps."""
        ...

    def runs(
        self,
        *,
        playbook: str | None = None,
        target: str | None = None,
        status: str | None = None,
        since: str | None = None,
        limit: int = 50,
    ) -> list[RunRecord]:
        """Runs (without their steps), newest first."""
        ...

    def fleet_runs(self, fleet_id: str) -> list[RunRecord]:
        """The runs of one fleet run (`runbook run -t GROUP --forks N`), by target."""
        ...

    def running_on(self, host: str) -> list[RunRecord]:
        """Runs this host recorded as running."""
        ...

    def continuation(self, run_id: str) -> RunRecord | None:
        """The run that resumed or rolled back `run_id`, if one did."""
        ...

    def steps(self, run_id: str) -> list[StepRecord]: ...

    # -- incidents and deliveries ------------------------------------------------

    def incident(self, incident_id: int) -> IncidentRecord | None: ...

    def open_incident(self, key: str) -> IncidentRecord | None:
        """The incident not yet resolved with this key."""
        ...

    def last_resolved(self, key: str) -> IncidentRecord | None:
        """The incident with this key resolved last (a flap reopens it)."""
        ...

    def incidents(
        self,
        *,
        only_open: bool,
        keys: Collection[str] | None = None,
        playbook: str | None = None,
    ) -> list[IncidentRecord]:
        """Newest first; `only_open`: not resolved; `keys`, `playbook`: only those."""
        ...

    def incidents_due(self, now: str) -> list[IncidentRecord]:
        """Open incidents whose next escalation step is due."""
        ...

    def delivery(self, delivery_id: int) -> DeliveryRecord | None: ...

    def deliveries_of(self, incident_id: int) -> list[DeliveryRecord]: ...

    def unsent_deliveries(self) -> list[DeliveryRecord]:
        """Deliveries pending or retrying, oldest first."""
        ...

    def loose_deliveries(self) -> list[DeliveryRecord]:
        """Deliveries of no incident (notify steps') not delivered."""
        ...

    def planned_note(self, run_id: str | None, delivery_id: int) -> dict[str, Any] | None:
        """The notification a delivery was planned with (in its event)."""
        ...

    def authorizations(
        self, playbook: str | None = None, target: str | None = None
    ) -> list[AuthorizationRecord]:
        """Standing authorizations (revoked ones too), newest first."""
        ...

    # -- the scheduler (runbook.schedule) ----------------------------------------
    # The fire ledger (`fires`) and pauses (`pauses`) are written as events, like
    # every table: append({"table": "fires", "op": "insert", ...}). A fire's id
    # is unique, so of two schedulers inserting the same slot one gets Conflict.

    def fire(self, fire_id: str) -> FireRecord | None: ...

    def fires(
        self,
        *,
        playbook_path: str | None = None,
        target: str | None = None,
        status: str | None = None,
        limit: int | None = 100,
        playbook: str | None = None,
        since: str | None = None,
        unsettled: bool = False,
    ) -> list[FireRecord]:
        """Ledger rows, the latest slot first: of `playbook_path`; of
        `playbook` given by its name or its path; of slots reaching to
        `since` (an ISO instant) or later; `unsettled`: whose run's end (or
        error) the ledger has not recorded. `limit` None: every row (for
        sets a scheduler must see whole, bounded by its routines)."""
        ...

    def fire_head(self, playbook_path: str, schedule: str, target: str) -> FireRecord | None:
        """The row of a (schedule, target) with the latest slot: how far its ledger got."""
        ...

    def fire_heads(self) -> list[FireRecord]:
        """The latest row of every (playbook, schedule, target) in the ledger."""
        ...

    def pauses(self, playbook_path: str | None = None) -> list[PauseRecord]:
        """`schedule disable|enable` records, newest first."""
        ...

    def beat(self, heartbeat: HeartbeatRecord) -> None:
        """Record a scheduler's heartbeat (an upsert by id; not chained: liveness, not history)."""
        ...

    def heartbeats(self) -> list[HeartbeatRecord]:
        """Every scheduler's last heartbeat, the latest tick first."""
        ...

    # -- drills (runbook.drill): written as events, like every table ----------------

    def drill(self, drill_id: str) -> DrillRecord | None:
        """A drill by id or unique prefix."""
        ...

    def drills(
        self,
        playbook_path: str | None = None,
        limit: int | None = 50,
        statuses: tuple[str, ...] = (),
        named: str | None = None,
    ) -> list[DrillRecord]:
        """Drills, newest first; `statuses`: only those in one of them;
        `named`: of the drill playbook or the procedure of this name or path;
        `limit` None: every one."""
        ...

    def drill_notes(self, drill_id: str) -> list[DrillNoteRecord]:
        """A drill's findings, actions and sign-offs, oldest first."""
        ...

    # -- approvals (runbook.approval): written as events, like every table ----------

    def approvals(
        self, *, run_ids: tuple[str, ...] = (), status: str | None = None, limit: int = 100
    ) -> list[ApprovalRecord]:
        """Approval requests (of these runs, in this status), newest first."""
        ...

    def votes(self, approval_id: str) -> list[VoteRecord]:
        """The votes on a request, oldest first."""
        ...

    # -- the chain -----------------------------------------------------------------

    def head(self) -> tuple[int, str]:
        """(events counted, hash) of the chain that checkpoints sign."""
        ...

    def latest_checkpoint(self) -> tuple[int, Any] | None:
        """(position, checkpoint data) of the last checkpoint recorded."""
        ...

    def events(self) -> list[EventRecord]:
        """Every event, in the order each chain appended them."""
        ...

    def verify(self) -> list[str]:
        """Problems found: a broken chain, or tables that disagree with the events."""
        ...


def config_for(inventory: Inventory | None) -> StoreConfig:
    """Where the inventory's journal is: $RUNBOOK_JOURNAL (a path, or a
    postgresql:// DSN) over the inventory's `journal:`."""
    from runbook.journal.key import key_file_for
    from runbook.variables import resolve

    key_file = key_file_for(inventory)
    schema = inventory.journal.schema if inventory else "runbook"
    env = os.environ.get(ENV)
    if env:
        if _DSN.match(env) or _CONNINFO.match(env) or env == "embedded":
            root = inventory.root if inventory else None
            return StoreConfig("postgresql", dsn=env, schema=schema, key_file=key_file, root=root)
        return StoreConfig("sqlite", path=Path(env), key_file=key_file)
    if inventory is None:
        return StoreConfig("sqlite", path=Path(".runbook/journal.sqlite"), key_file=key_file)
    journal = inventory.journal
    if journal.backend in ("postgres", "postgresql"):
        if journal.dsn is None:
            raise UsageError(f"{inventory.path}: journal: backend {journal.backend} needs a dsn")
        dsn = resolve(journal.dsn, "journal.dsn", set())
        return StoreConfig(
            "postgresql", dsn=str(dsn), schema=schema, key_file=key_file, root=inventory.root
        )
    return StoreConfig("sqlite", path=inventory.root / journal.path, key_file=key_file)


def open_store(config: StoreConfig, *, create: bool = True) -> JournalStore:
    """The journal `config` names, its schema brought up to date (`create`)."""
    if config.backend == "postgresql":
        from runbook.journal.postgres import PostgresStore

        return PostgresStore(config, create=create)
    from runbook.journal.sqlite import Journal

    assert config.path is not None
    return Journal(config.path, config.key_file, config=config)


def verify_journal(
    config: StoreConfig,
    checkpoint: Checkpoint | None = None,
    public: Ed25519PublicKey | None = None,
) -> Report:
    """The journal checked without writing to it (runbook.journal.verify)."""
    if config.backend == "postgresql":
        from runbook.journal.postgres_verify import verify_postgres

        return verify_postgres(config, checkpoint, public)
    from runbook.journal.verify import verify_file

    assert config.path is not None
    return verify_file(config.path, checkpoint, public)
