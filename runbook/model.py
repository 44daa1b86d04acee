"""The file formats as frozen dataclasses, each knowing where it was written.

Built from data that already passed the JSON Schema, so the builders here only
reshape; every check with a message lives in `schema` (shape) or `checks`
(meaning).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.load.yamlsrc import DataPath, Document

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

DEFAULT_SEVERITIES: tuple[tuple[str, tuple[str, ...], int], ...] = (
    ("HEALTHY", ("OK", "INFO"), 0),
    ("LOW", (), 0),
    ("ATTENTION", ("MEDIUM",), 1),
    ("WARNING", ("HIGH",), 1),
    ("CRITICAL", (), 2),
)


def seconds(value: str | float | int | None) -> float | None:
    """A schema duration (`5m`, `2h30m`, `500ms`, or a number of seconds) in seconds."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return sum(float(n) * _UNITS[unit] for n, unit in _DURATION.findall(value))


class Loc:
    """Where something was written: file, line, column and JSON path.

    Given the document instead of a line and column, it looks them up on first
    use: most runs never print a position, and a cached document decodes its
    position tables only when one is asked for.
    """

    __slots__ = ("_col", "_doc", "_key", "_line", "file", "path")

    def __init__(
        self,
        file: str,
        line: int = 0,
        col: int = 0,
        path: DataPath = (),
        *,
        doc: Document | None = None,
        key: bool = False,
    ) -> None:
        self.file = file
        self.path = path
        self._line = line
        self._col = col
        self._doc = doc
        self._key = key  # where the key is written rather than its value

    def _find(self) -> None:
        if self._doc is not None:
            where = self._doc.position(self.path, key=self._key)
            self._line, self._col, self._doc = where.line, where.col, None

    @property
    def line(self) -> int:
        self._find()
        return self._line

    @property
    def col(self) -> int:
        self._find()
        return self._col

    @property
    def pointer(self) -> str:
        from runbook.load.yamlsrc import format_path

        return format_path(self.path) if self.path else ""

    def _identity(self) -> tuple[str, DataPath, int, int]:
        return (self.file, self.path, self.line, self.col)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Loc) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash((self.file, self.path))

    def __repr__(self) -> str:
        return f"Loc({self.file!r}, {self.line}, {self.col}, {self.path!r})"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class EmbeddedDb:
    """`dsn: {embedded: true, dbname: NAME}`: a database of its own on the sandbox."""

    dbname: str


# A looped step's own names besides its item, and how many items it may have
# (refused beyond, when validating a YAML list and when running a template's).
LOOP_INDEX = "loop_index"
MAX_LOOP_ITEMS = 10_000

# Names a sandbox database may not take: the server's own, and the journal's
# (a playbook must not be able to reach the journal's tables as a target).
RESERVED_DATABASES = frozenset({"postgres", "template0", "template1", "runbook_journal"})


@dataclass(frozen=True)
class EnvRef:
    """`{from_env: NAME}`: a value read from the environment at run time."""

    name: str
    default: str | None = None
    secret: bool = True


@dataclass(frozen=True)
class Gate:
    that: tuple[str, ...]
    severity: str
    message: str | None
    name: str | None
    on_failure: str | None
    loc: Loc


@dataclass(frozen=True)
class Step:
    """One step: its kind, the kind's own settings (`body`) and the common keys."""

    kind: str
    name: str
    body: Any
    loc: Loc
    data_path: DataPath
    id: str | None = None
    when: tuple[str, ...] | bool | None = None
    register: str | None = None
    tags: frozenset[str] = frozenset()
    timeout: float | None = None
    retries: int = 0
    delay: float = 1.0
    backoff: float = 1.0
    until: tuple[str, ...] | bool | None = None
    on_failure: str | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)
    gates: tuple[Gate, ...] = ()
    rollback: tuple[Step, ...] = ()
    children: tuple[Step, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    # `loop:` as written: a template giving a list, or a YAML list (None: no loop).
    loop: Any = None
    loop_var: str = "item"

    @property
    def key(self) -> str:
        """Stable identity in journal and incidents: the id, or the name."""
        return self.id or self.name

    def walk(self) -> Iterator[Step]:
        """This step, its transaction children and rollback steps, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()
        for undo in self.rollback:
            yield from undo.walk()


@dataclass(frozen=True)
class Blackout:
    """A window a schedule does not fire in, as written: dates (`from`/`to`, whole
    days in the schedule's time zone, or `YYYY-MM-DD HH:MM`) or a weekly window
    (`Sun 02:00-04:00`). Parsed and checked by runbook.schedule."""

    start: str | None = None
    end: str | None = None
    weekly: str | None = None


@dataclass(frozen=True)
class Schedule:
    """One schedule of a playbook, as written (runbook.schedule computes its fires).
    Exactly one of `cron` and `every` is set; None fields take their defaults
    where the schedule is compiled (the time zone from the inventory)."""

    cron: str | None = None
    every: float | None = None
    timezone: str | None = None
    targets: tuple[str, ...] = ()
    overlap: str = "skip"
    catchup: str = "latest"
    starting_deadline: float | None = None
    max_duration: float | None = None
    jitter: float | None = None
    blackout: tuple[Blackout, ...] = ()
    # Where it was written: ("schedule",) or ("schedule", i) in a list.
    data_path: DataPath = ("schedule",)
    short: bool = False  # the bare cron string form: its errors point at the string

    @property
    def key(self) -> str:
        """A stable name for this schedule within its playbook (the ledger's key):
        what it fires on, and its own time zone (the same cron in two zones is
        two schedules)."""
        if self.cron is None:
            return f"every:{self.every:g}s"
        zone = f"@{self.timezone}" if self.timezone else ""
        return f"cron:{' '.join(self.cron.split())}{zone}"


@dataclass(frozen=True)
class Approval:
    """`approval:` of a playbook (runbook.approval): four eyes before it runs."""

    quorum: int = 1
    approvers: tuple[str, ...] = ()  # user names or groups of people; empty: anyone
    forbid_self: bool = True
    timeout: float = 1800.0
    on_timeout: str = "halt"  # halt | escalate
    break_glass: bool = False
    reason_required: bool = True
    implied: bool = False  # not written: the default for an emergency on a protected target


@dataclass(frozen=True)
class Objectives:
    """Targets a drill measures a procedure against, in seconds (None: not set here)."""

    respond: float | None = None
    mitigate: float | None = None
    recover: float | None = None
    steps: Mapping[str, float] = field(default_factory=dict)  # a step's id or name → seconds


@dataclass(frozen=True)
class DrillDef:
    """A `kind: drill` playbook's `drill:` (paths as written, relative to its file)."""

    exercise: str
    recovery: str | None = None
    severity: str | None = None
    heartbeat: str | None = None  # table.column (or schema.table.column) for the RPO
    copy: str = "auto"  # auto | template | dump
    notify: str = "route"  # route: the policy's drill_route only; real: its first level


@dataclass(frozen=True)
class Strategy:
    """How a group's targets run (runbook.fleet.strategy): `strategy:` in a playbook."""

    forks: int | None = None
    waves: tuple[int | str, ...] = ()  # a count, or a percentage of the targets ("10%")
    max_failures: tuple[str, float] | None = None  # ("count", 3) or ("percent", 10)
    order: str = "inventory"  # or random


@dataclass(frozen=True)
class Playbook:
    name: str
    kind: str
    steps: tuple[Step, ...]
    path: Path
    sha256: str
    description: str = ""
    owner: str | None = None
    tags: frozenset[str] = frozenset()
    targets: tuple[str, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    escalation: str | None = None
    escalation_threshold: str | None = None
    objectives: Objectives | None = None
    drill: DrillDef | None = None
    approval: Approval | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)
    secrets: frozenset[str] = frozenset()
    on_failure: str = "halt"
    timeout: float | None = None
    lock_timeout: float | None = None
    strategy: Strategy = field(default_factory=Strategy)
    run_on: str | None = None  # primary | standby | any (None: by what the playbook does)
    on_worker_loss: str | None = None  # resume | halt (None: resume for a check, else halt)
    doc: Document | None = field(default=None, compare=False, repr=False)

    def walk(self) -> Iterator[Step]:
        for step in self.steps:
            yield from step.walk()

    @property
    def after_worker_loss(self) -> str:
        """What a queued run of it does when its worker dies: resume or halt."""
        return self.on_worker_loss or ("resume" if self.kind == "check" else "halt")


@dataclass(frozen=True)
class Target:
    name: str
    dsn: str | EnvRef | EmbeddedDb
    loc: Loc
    password: str | EnvRef | None = None
    description: str = ""
    vars: Mapping[str, Any] = field(default_factory=dict)
    tags: frozenset[str] = frozenset()
    connect_timeout: float | None = None
    read_only: bool = False
    golden_copy: str | None = None  # an idle database on the same server that drills copy
    protected: bool = False
    # Where this target's PostgreSQL client programs are (runbook.pg.pgtools).
    pg_bin: Path | None = None

    @property
    def embedded(self) -> bool:
        return self.dsn == "embedded" or isinstance(self.dsn, EmbeddedDb)

    @property
    def sandbox_db(self) -> str | None:
        """The sandbox database of a `{embedded: true, dbname: …}` target (None: the default)."""
        return self.dsn.dbname if isinstance(self.dsn, EmbeddedDb) else None


@dataclass(frozen=True)
class Severity:
    name: str
    rank: int
    aliases: tuple[str, ...] = ()
    nagios: int = 0
    color: str | None = None


@dataclass(frozen=True)
class Scale:
    """The ordered severity scale; names and aliases resolve to levels."""

    levels: tuple[Severity, ...]

    def get(self, name: str) -> Severity | None:
        wanted = name.upper()
        for level in self.levels:
            if level.name.upper() == wanted or wanted in (a.upper() for a in level.aliases):
                return level
        return None

    def names(self) -> list[str]:
        return [n for level in self.levels for n in (level.name, *level.aliases)]

    @property
    def lowest(self) -> Severity:
        return self.levels[0]

    @property
    def highest(self) -> Severity:
        return self.levels[-1]

    @classmethod
    def default(cls) -> Scale:
        return cls(
            tuple(
                Severity(name, rank, aliases, nagios)
                for rank, (name, aliases, nagios) in enumerate(DEFAULT_SEVERITIES)
            )
        )


@dataclass(frozen=True)
class Channel:
    name: str
    type: str
    settings: Mapping[str, Any]
    loc: Loc


@dataclass(frozen=True)
class Recipient:
    channel: str
    to: tuple[str, ...] = ()


@dataclass(frozen=True)
class Level:
    after: float
    notify: tuple[Recipient, ...]
    name: str | None = None


@dataclass(frozen=True)
class SeverityPolicy:
    levels: tuple[Level, ...]
    acknowledge_within: float | None = None
    mitigate_within: float | None = None
    repeat_every: float | None = None
    repeat_times: int | None = None


@dataclass(frozen=True)
class Policy:
    name: str
    severities: Mapping[str, SeverityPolicy]
    loc: Loc
    threshold: str = "WARNING"
    description: str = ""
    # A gate failing again this soon after it recovered reopens its incident,
    # counted, without paging again (None: a new incident, paged).
    flap_window: float | None = None
    # A drill's incidents and notifications go to these channels only ([DRILL]); none: not sent.
    drill_route: tuple[str, ...] = ()


@dataclass(frozen=True)
class JournalConfig:
    backend: str = "sqlite"
    path: str = ".runbook/journal.sqlite"
    dsn: str | EnvRef | None = None
    schema: str = "runbook"
    row_sample: int = 20


@dataclass(frozen=True)
class Defaults:
    timeout: float = 300.0
    lock_timeout: float = 5.0
    connect_timeout: float = 5.0
    escalation: str | None = None
    forks: int = 10  # targets of a group run at once
    per_server: int | None = None  # at most this many at once on one server


@dataclass(frozen=True)
class ComputedGroup:
    """`groups: {NAME: {targets_from: …}}`: a group whose targets are found when
    a run starts (runbook.fleet.computed): the databases of a cluster whose
    names match a LIKE pattern, or the `name=DSN` lines of a file."""

    name: str
    loc: Loc
    cluster: str | None = None  # a target of the inventory: the server to list
    databases: str | None = None  # the LIKE pattern the cluster's databases match
    file: str | None = None  # as written: relative to the inventory's folder
    description: str = ""


@dataclass(frozen=True)
class Inventory:
    path: Path
    targets: Mapping[str, Target]
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Groups found at run time; a run's inventory has them in `groups` too, expanded.
    computed: Mapping[str, ComputedGroup] = field(default_factory=dict)
    default_target: str | None = None
    journal: JournalConfig = field(default_factory=JournalConfig)
    defaults: Defaults = field(default_factory=Defaults)
    scale: Scale = field(default_factory=Scale.default)
    channels: Mapping[str, Channel] = field(default_factory=dict)
    policies: Mapping[str, Policy] = field(default_factory=dict)
    # `scheduler: {timezone: …}`: what schedules without a timezone of their own read
    # their cron in (None: UTC).
    scheduler_timezone: str | None = None
    scheduler_dispatch: str = "process"  # or queue: fired runs go to runbook worker
    people: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # groups of people
    allowed_signers: Path | None = None  # approvers.allowed_signers, resolved
    doc: Document | None = field(default=None, compare=False, repr=False)

    @property
    def root(self) -> Path:
        """The project folder: where the inventory is; `.runbook/` and `sql/` live here."""
        return self.path.parent

    def escalation_of(self, playbook: Playbook) -> str | None:
        """The escalation policy a playbook's incidents go through: its own, else the default."""
        return playbook.escalation or self.defaults.escalation

    def group_names(self) -> set[str]:
        """Every group's name, the computed ones' too."""
        return set(self.groups) | set(self.computed)

    def expand(self, name: str) -> tuple[str, ...] | None:
        """Target names of a target or group; None if the name is neither."""
        if name in self.targets:
            return (name,)
        if name in self.groups:
            return self.groups[name]
        return None
