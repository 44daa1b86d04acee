"""Computed groups (`targets_from:`): a group's targets found when a run starts.

- `{cluster: TARGET, databases: PATTERN}`: every database of the server TARGET
  reaches whose name matches the LIKE pattern (templates and databases that
  allow no connections left out), in order of name, each a target named
  `TARGET/DBNAME` with TARGET's DSN (its password, its settings) and that
  dbname. A `/` is in no inventory name, so these names never clash with one.
- `{file: PATH}`: one `name=DSN` a line of a file beside the inventory.

A fleet file is checked with the inventory (`runbook validate`, every run)
before anything connects: each problem at its line and column. A DSN in it
may hold a password: no message here quotes a DSN, and each target's password
joins its run's secrets when service.resolve_dsn resolves it (as for any
target; not every password of the file in every run's redactor, which would
cost a fleet of N targets N² pattern builds).

Listing a cluster connects, so it happens only when a run starts, and only
for the groups the run names (`expand`): once the inventory has been checked,
before the first target runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from runbook.errors import InvalidFiles, Problem, TargetError, UsageError
from runbook.load.loader import display_path
from runbook.load.yamlsrc import DataPath, format_path
from runbook.model import ComputedGroup, Inventory, Loc, Target
from runbook.redact import Redactor

# Bounds on the work a group may ask for: a fleet file's size and lines, a
# cluster's matching databases, and how long listing them may take.
MAX_LINES = 100_000
MAX_BYTES = 16 * 1024 * 1024
MAX_DATABASES = 100_000
LIST_TIMEOUT = "10s"

# An inventory name (schemas/inventory.schema.json `$defs/name`).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")

# The embedded server's journal: never a target, whatever a pattern matches.
_JOURNAL_DATABASE = "runbook_journal"

_LIST = (
    "SELECT datname FROM pg_catalog.pg_database"
    " WHERE datname LIKE %s AND NOT datistemplate AND datallowconn AND datname <> %s"
)
_ORDER = ' ORDER BY datname COLLATE "C" LIMIT %s'

# service.resolve_dsn (passed in: the service is above this module): a target's
# DSN as a run connects with it, the environment read, the sandbox started, the
# password in it and added to the secrets.
DsnOf = Callable[[Target, Path, set[str]], tuple[str, dict[str, str]]]


@dataclass(frozen=True)
class Entry:
    """One `name=DSN` line of a fleet file."""

    name: str
    dsn: str
    line: int
    col: int  # where the name starts


# --- fleet files: read and checked before anything connects -------------------


def file_of(inventory: Inventory, group: ComputedGroup) -> Path:
    assert group.file is not None
    return inventory.root / group.file


def read_file(
    inventory: Inventory, group: ComputedGroup, *, dsns: bool = True
) -> tuple[list[Entry], list[Problem]]:
    """The entries of a group's fleet file, and every problem with it; `dsns`:
    each DSN parsed too (libpq's parser: some 45 µs a line, the most of it)."""
    path = file_of(inventory, group)
    shown = display_path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        where = ("groups", group.name, "targets_from", "file")
        return [], [_at_inventory(inventory, where, f"cannot read {group.file}: {exc.strerror}")]
    if len(raw) > MAX_BYTES:
        message = f"larger than {MAX_BYTES:,} bytes: split the fleet into groups"
        return [], [Problem(shown, 1, 1, "", message, "fleet-file")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return [], [Problem(shown, line, 1, "", "not UTF-8 text", "fleet-file")]
    lines = text.split("\n")
    if len(lines) > MAX_LINES and any(s.strip() for s in lines[MAX_LINES:]):
        message = f"more than {MAX_LINES:,} lines: split the fleet into groups"
        return [], [Problem(shown, MAX_LINES + 1, 1, "", message, "fleet-file")]
    return _parse(inventory, group, shown, lines, dsns)


def _parse(
    inventory: Inventory, group: ComputedGroup, shown: str, lines: list[str], dsns: bool
) -> tuple[list[Entry], list[Problem]]:
    entries: list[Entry] = []
    problems: list[Problem] = []
    first: dict[str, int] = {}
    taken = set(inventory.targets) | inventory.group_names()

    def problem(line: int, col: int, message: str) -> None:
        problems.append(Problem(shown, line, col, "", message, "fleet-file"))

    for number, raw in enumerate(lines, start=1):
        text = raw.rstrip("\r")
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        col = len(text) - len(text.lstrip()) + 1
        if "=" not in stripped:
            # The line is not quoted back: it may be a DSN with a password.
            problem(number, col, "expected name=DSN (a # starts a comment line)")
            continue
        before, after = stripped.split("=", 1)
        name = before.rstrip()
        dsn_col = col + len(before) + 1 + len(after) - len(after.lstrip())
        dsn = after.strip()
        if not _NAME.match(name):
            problem(
                number,
                col,
                "the name before the first '=' must be letters, digits, '.', '-' and '_', "
                "starting with a letter or digit",
            )
            continue
        if not dsn:
            problem(number, dsn_col, f"target {name!r}: no DSN after '='")
            continue
        if name in first:
            problem(number, col, f"target {name!r} is listed twice (first on line {first[name]})")
            continue
        first[name] = number
        if name in taken:
            what = "a target" if name in inventory.targets else "a group"
            problem(number, col, f"{name!r} is {what} of the inventory: choose another name")
            continue
        invalid = _invalid_dsn(dsn) if dsns else None
        if invalid is not None:
            problem(number, dsn_col, f"target {name!r}: invalid DSN: {invalid}")
            continue
        entries.append(Entry(name, dsn, number, col))
    return entries, problems


def _invalid_dsn(dsn: str) -> str | None:
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(dsn)
    except Exception as exc:
        # libpq quotes the fragment it stumbled on, which may be (part of) a
        # password: only an option's name is shown (as service.resolve_dsn does).
        return re.sub(r'(?<!option )"[^"]*"', '"***"', (str(exc).splitlines() or [""])[0])
    return None


def _at_inventory(inventory: Inventory, where: DataPath, message: str) -> Problem:
    doc = inventory.doc
    assert doc is not None
    pos = doc.position(where)
    return Problem(doc.path, pos.line, pos.col, format_path(where), message, "fleet-file")


def file_problems(inventory: Inventory) -> list[Problem]:
    """Every problem of every fleet file the inventory's groups name."""
    return [
        problem
        for group in inventory.computed.values()
        if group.file is not None
        for problem in read_file(inventory, group)[1]
    ]


# --- expansion: when a run starts ---------------------------------------------


def expand(
    inventory: Inventory, names: Iterable[str], dsn_of: DsnOf, secrets: set[str]
) -> Inventory:
    """The inventory with the computed groups among `names` found: their targets
    added to `targets`, each group in `groups` as their names. A name of one
    computed target (`CLUSTER/DBNAME`, or a fleet file's name: a resume, a
    --rerun-failed) is found too. A cluster's password joins `secrets`
    (dsn_of adds it). Unchanged (the same object) when no name needs it."""
    wanted = [n for n in names if n not in inventory.targets and n not in inventory.groups]
    if not wanted or not inventory.computed:
        return inventory
    targets = dict(inventory.targets)
    groups = dict(inventory.groups)
    for name in wanted:
        group = inventory.computed.get(name)
        if group is not None:
            found = _targets_of(inventory, group, dsn_of, secrets)
            groups[name] = tuple(t.name for t in found)
        else:
            found = _one(inventory, name, dsn_of, secrets)
        for target in found:
            if targets.setdefault(target.name, target) != target:
                raise UsageError(
                    f"target {target.name!r} is found by two computed groups, differently"
                )
    return replace(inventory, targets=targets, groups=groups)


def _targets_of(
    inventory: Inventory, group: ComputedGroup, dsn_of: DsnOf, secrets: set[str]
) -> list[Target]:
    if group.file is not None:
        entries = _entries(inventory, group)
        if not entries:  # "no check ran" is never healthy
            raise UsageError(f"group {group.name!r}: {group.file} lists no target")
        shown = display_path(file_of(inventory, group))  # once: it resolves the path
        return [_file_target(shown, group, e) for e in entries]
    assert group.cluster is not None and group.databases is not None
    cluster = inventory.targets[group.cluster]
    dsn = dsn_of(cluster, inventory.root, secrets)[0]
    names = list_databases(inventory, group, dsn, secrets)
    if not names:
        raise UsageError(
            f"group {group.name!r}: no database of {group.cluster!r} matches "
            f"{group.databases!r} (templates and databases that allow no connections "
            "are left out; in LIKE, _ is any one character and % any text)"
        )
    return [_database_target(cluster, dsn, name, group) for name in names]


def _one(inventory: Inventory, name: str, dsn_of: DsnOf, secrets: set[str]) -> list[Target]:
    """The computed target called `name`, if a group of the inventory finds it."""
    cluster, slash, database = name.partition("/")
    for group in inventory.computed.values():
        if slash and group.cluster == cluster and cluster in inventory.targets:
            target = inventory.targets[cluster]
            dsn = dsn_of(target, inventory.root, secrets)[0]
            if list_databases(inventory, group, dsn, secrets, only=database):
                return [_database_target(target, dsn, database, group)]
        elif not slash and group.file is not None:
            for entry in _entries(inventory, group):
                if entry.name == name:
                    shown = display_path(file_of(inventory, group))
                    return [_file_target(shown, group, entry)]
    return []  # plan.resolve_targets says it is unknown


def _entries(inventory: Inventory, group: ComputedGroup) -> list[Entry]:
    # The inventory's check parsed every DSN a moment ago, and resolve_dsn
    # parses each again before it connects: not a third time here.
    entries, problems = read_file(inventory, group, dsns=False)
    if problems:  # the file changed since the inventory was checked
        raise InvalidFiles(problems)
    return entries


def _file_target(shown: str, group: ComputedGroup, entry: Entry) -> Target:
    return Target(
        name=entry.name,
        dsn=entry.dsn,
        loc=Loc(shown, entry.line, entry.col),
        description=f"{group.file} line {entry.line}",
    )


def _database_target(cluster: Target, dsn: str, database: str, group: ComputedGroup) -> Target:
    """One database of the cluster: the cluster's settings, its own dbname. The
    DSN already holds the password; the golden copy is one database's own."""
    from psycopg.conninfo import make_conninfo

    if not database.isprintable():
        raise UsageError(f"group {group.name!r}: database {database!r} has an unprintable name")
    return replace(
        cluster,
        name=f"{cluster.name}/{database}",
        dsn=make_conninfo(dsn, dbname=database),
        password=None,
        golden_copy=None,
        description=f"database {database} of {cluster.name}",
        loc=group.loc,
    )


def list_databases(
    inventory: Inventory,
    group: ComputedGroup,
    dsn: str,
    secrets: set[str],
    only: str | None = None,
) -> list[str]:
    """The names of the cluster's databases the group's pattern matches (only
    `only`, if given), in byte order; a short connect timeout, a bounded query."""
    import psycopg

    assert group.cluster is not None and group.databases is not None
    cluster = inventory.targets[group.cluster]
    timeout = cluster.connect_timeout or inventory.defaults.connect_timeout
    query = _LIST + (" AND datname = %s" if only is not None else "") + _ORDER
    params = (group.databases, _JOURNAL_DATABASE, *([only] if only is not None else []))
    try:
        with psycopg.connect(
            dsn,
            autocommit=True,
            connect_timeout=max(1, math.ceil(timeout)),
            application_name=f"runbook/targets_from/{group.name}",
        ) as conn:
            conn.execute(f"SET statement_timeout = '{LIST_TIMEOUT}'")
            rows = conn.execute(query, (*params, MAX_DATABASES + 1)).fetchall()
    except psycopg.Error as exc:
        detail = Redactor(secrets).text((str(exc).strip().splitlines() or [""])[0])
        raise TargetError(
            f"group {group.name!r}: cannot list the databases of {group.cluster!r}: {detail}"
        ) from None
    if len(rows) > MAX_DATABASES:
        raise UsageError(
            f"group {group.name!r}: more than {MAX_DATABASES:,} databases of {group.cluster!r} "
            f"match {group.databases!r}: narrow the pattern"
        )
    return [str(row[0]) for row in rows]
