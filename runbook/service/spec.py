"""What a run is asked to do (RunSpec: plain data, to_dict/from_dict), and
that request made ready to run: the files loaded and checked, the targets
resolved (computed groups, --limit, DSNs and their secrets), the plan of each
target. runbook.service.running runs it."""

from __future__ import annotations

import difflib
import getpass
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from runbook import checks, plan, variables
from runbook.errors import InvalidFiles, SandboxError, UsageError
from runbook.fleet import computed
from runbook.fleet.group import limited
from runbook.journal.store import JournalStore, config_for, open_store
from runbook.load import inventory as inventory_file
from runbook.load import project
from runbook.model import Inventory, Playbook, Target
from runbook.pg import pgtools, sandbox


@dataclass
class RunSpec:
    """What to run, how: plain data that a queue or a schedule can hold."""

    playbook: Path
    inventory: Path | None = None
    targets: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()  # -e items as given: key=value, @file, a JSON object
    tags: frozenset[str] = frozenset()
    skip_tags: frozenset[str] = frozenset()
    check: bool = False
    rehearse: bool = False
    yes: bool = False
    exit_codes: str = "default"
    mode: str | None = None
    parent_run: str | None = None
    undo_only: bool = False  # `runbook rollback`: only undo what the Resume lists
    forced: str | None = None  # why the playbook was run although it changed
    continues: str | None = None  # the run this resume or rollback claims
    notify: bool = True  # False: no incident opened, nobody paged, notify steps skipped
    start_at: str | None = None  # --start-at-step: a top-level step's id, name or number
    # A protected target's name typed ahead (--confirm-target), for runs without a terminal.
    confirm_targets: tuple[str, ...] = ()
    attended: bool = True  # False: a schedule or a queue; needs a standing authorization
    # Given by whoever launches the run (a scheduler's fire, a queued job), so
    # that its ledger can name the run before it starts; one target only.
    run_id: str | None = None
    operator: str | None = (
        None  # who runs it ("scheduler@HOST"); default: $RUNBOOK_OPERATOR, else the user
    )
    fire: dict[str, Any] | None = None  # the schedule's slot that fired it, recorded on the run
    # A drill's run (runbook.drill): {id, role, database, server: same|embedded, mark}.
    # Every target is replaced by the drill's copy, whose mark each connection checks.
    drill: dict[str, Any] | None = None
    break_glass: str | None = None  # --break-glass --reason: proceed without the approval
    forks: int | None = None  # targets at once (None: the strategy's, else the inventory's)
    limit: tuple[str, ...] = ()  # --limit: globs over target names, "!glob" leaves out
    queued: dict[str, Any] | None = None  # taken from the queue: {job, worker}, recorded on the run
    fleet: str | None = None  # the fleet run grouping these targets' runs (given when fanned out)

    @property
    def dry_run(self) -> bool:
        """--check, --rehearse or `rollback --check`: nothing is changed, nobody consents."""
        return self.check or self.rehearse or self.mode == "rollback-check"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: paths as text, sets as sorted lists."""
        data: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, frozenset | tuple):
                value = sorted(value) if isinstance(value, frozenset) else list(value)
            data[item.name] = value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSpec:
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"run spec: unknown field(s) {', '.join(unknown)}")
        values = dict(data)
        values["playbook"] = Path(values["playbook"])
        if values.get("inventory") is not None:
            values["inventory"] = Path(values["inventory"])
        for name in ("targets", "extra", "confirm_targets", "limit"):
            values[name] = tuple(values.get(name, ()))
        for name in ("tags", "skip_tags"):
            values[name] = frozenset(values.get(name, ()))
        return cls(**values)


@dataclass
class Prepared:
    """Everything a run needs, validated before anything connects."""

    playbook: Playbook
    inventory: Inventory
    includes: dict[Path, Playbook]
    targets: list[Target]
    extra: dict[str, Any]
    secrets: set[str] = field(default_factory=set)
    start_at: int | None = None  # the top-level position --start-at-step names
    # Looks for PostgreSQL client programs once per run, for all its targets.
    tools: pgtools.Finder = field(default_factory=lambda: pgtools.Finder(embedded_bin=embedded_bin))
    run_on: str = "any"  # checks.run_on of the playbook: read once, for all its targets


def operator() -> str:
    return os.environ.get("RUNBOOK_OPERATOR") or getpass.getuser()


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def open_journal(inventory: Inventory) -> JournalStore:
    """The inventory's journal (runbook.journal.store.config_for says which)."""
    return open_store(config_for(inventory))


def load_inventory(path: Path | None, near: Path) -> Inventory:
    found = path or project.find_inventory(near)
    if found is None:
        raise UsageError(
            "no inventory: none given with -i, and no inventory.yaml in this folder or above"
        )
    inventory = inventory_file.require_inventory(found)
    problems = checks.check_inventory(inventory)
    if problems:
        raise InvalidFiles(problems)
    return inventory


def load_checked(
    path: Path, inventory_path: Path | None
) -> tuple[Inventory, Playbook, dict[Path, Playbook]]:
    """The inventory, the playbook and its includes, all valid (else InvalidFiles, exit 2)."""
    inventory = load_inventory(inventory_path, path)
    ctx = checks.Context(inventory, inventory.root)
    playbook, problems = ctx.load(path)
    if playbook is None:
        raise InvalidFiles(problems)
    if not checks.passed(ctx, playbook):
        problems = checks.check_playbook(playbook, ctx)
        if problems:
            raise InvalidFiles(problems)
        checks.remember(ctx, playbook)
    return inventory, playbook, checks.includes_of(ctx, playbook)


def prepare(spec: RunSpec) -> Prepared:
    """Load and check everything; raise an InputError (exit 2) before any connection."""
    inventory, playbook, includes = load_checked(spec.playbook, spec.inventory)
    _check_tags(spec, playbook, includes)
    extra = variables.parse_extra(spec.extra)
    missing = [name for name, value in playbook.vars.items() if value is None and name not in extra]
    if missing:
        raise UsageError(
            f"{playbook.name} needs a value for {', '.join(missing)}: pass -e {missing[0]}=…"
        )
    secrets = {str(extra[name]) for name in playbook.secrets if name in extra}
    start_at = _start_position(spec, inventory, playbook, extra) if spec.start_at else None
    if playbook.kind == "drill" and spec.drill is None:
        raise UsageError(
            f"{playbook.name} is a drill: run it with `runbook drill run {spec.playbook}`, "
            "which makes the copy it runs on"
        )
    # Computed groups (targets_from) are found here: the first connection a run may make.
    names = plan.source_names(playbook, inventory, spec.targets)
    inventory = computed.expand(inventory, names, resolve_dsn, secrets)
    targets = limited(plan.resolve_targets(playbook, inventory, spec.targets), spec.limit)
    for target in targets:
        if spec.drill is not None:
            continue  # the drill runs on its copy, never on the target itself
        if target.read_only and playbook.kind != "check" and not (spec.check or spec.rehearse):
            raise UsageError(
                f"target {target.name!r} is read-only; only kind: check playbooks run there"
            )
    return Prepared(
        playbook,
        inventory,
        includes,
        targets,
        extra,
        secrets,
        start_at,
        run_on=checks.run_on(playbook),
    )


def _start_position(
    spec: RunSpec, inventory: Inventory, playbook: Playbook, extra: Mapping[str, Any]
) -> int:
    """The top-level position --start-at-step names (an id, a name or a number);
    refused when a later step needs what only the skipped ones register."""
    wanted = str(spec.start_at)
    steps = playbook.steps
    for position, step in enumerate(steps, start=1):
        if wanted in (step.id, step.name, str(position)):
            break
    else:
        nested = [s.name for s in playbook.walk() if wanted in (s.id, s.name)]
        if nested:
            raise UsageError(
                f"--start-at-step {wanted!r} is inside a transaction or has a parent step: "
                "start at the block that holds it"
            )
        names = [s.id or s.name for s in steps]
        near = difflib.get_close_matches(wanted, names, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise UsageError(f"--start-at-step {wanted!r}: no such step in {playbook.name}{hint}")
    ctx = checks.Context(inventory, inventory.root)
    needed = checks.needed_before(playbook, ctx, position, frozenset(extra))
    if needed:
        what = "; ".join(f"{name!r} (registered by {step!r})" for name, step in needed.items())
        first = next(iter(needed))
        raise UsageError(
            f"--start-at-step {wanted!r} skips steps whose results later steps use: {what}. "
            f"Pass them with -e (e.g. -e {first}=…), or go on from a recorded run with "
            "runbook resume RUN_ID"
        )
    return position


def _check_tags(spec: RunSpec, playbook: Playbook, includes: Mapping[Path, Playbook]) -> None:
    """A --tags or --skip-tags name no step carries selects nothing: a typo, said so."""
    known = {
        tag for pb in (playbook, *includes.values()) for step in pb.walk() for tag in step.tags
    }
    for option, given in (("--tags", spec.tags), ("--skip-tags", spec.skip_tags)):
        for tag in sorted(given - known - {"always"}):
            near = difflib.get_close_matches(tag, sorted(known), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            have = ", ".join(sorted(known)) or "none"
            raise UsageError(
                f"{option} {tag!r}: no step of {playbook.name} has this tag{hint}; its tags: {have}"
            )


def resolve_dsn(target: Target, root: Path, secrets: set[str]) -> tuple[str, dict[str, str]]:
    """The target's DSN (starting the sandbox for `embedded`) and its libpq environment."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    if target.embedded:
        dsn = sandbox.dsn(root, target.sandbox_db)
    else:
        dsn = str(variables.resolve(target.dsn, f"target {target.name!r} dsn", secrets))
    password = (
        variables.resolve(target.password, f"target {target.name!r} password", secrets)
        if target.password
        else None
    )
    try:
        params = conninfo_to_dict(dsn)
    except Exception as exc:
        # libpq quotes the fragment it stumbled on, which may be (part of) the
        # password: only an option's name is shown.
        detail = re.sub(r'(?<!option )"[^"]*"', '"***"', (str(exc).splitlines() or [""])[0])
        raise UsageError(f"target {target.name!r}: invalid DSN: {detail}") from None
    if password:
        params["password"] = str(password)
        dsn = make_conninfo(dsn, password=str(password))
    found = params.get("password")  # as dsn_password(dsn) would read it, without a second parse
    if found:
        secrets.add(str(found))
    env_names = {
        "host": "PGHOST",
        "port": "PGPORT",
        "dbname": "PGDATABASE",
        "user": "PGUSER",
        "password": "PGPASSWORD",
        "sslmode": "PGSSLMODE",
    }
    env = {env_names[k]: str(v) for k, v in params.items() if k in env_names and v is not None}
    # PATH is not set here: a shell step gets the client programs of the
    # target's server version (runbook.pg.pgtools), chosen when it runs.
    return dsn, env


def drill_dsn(
    drill: Mapping[str, Any], dsn: str, env: dict[str, str], root: Path
) -> tuple[str, dict[str, str]]:
    """The drill's copy in place of the target: on the target's own server (its
    credentials), or on the embedded server the copy was restored into."""
    from psycopg.conninfo import make_conninfo

    database = str(drill["database"])
    if drill["server"] == "embedded":
        dsn = sandbox.server_dsn(root, database)
        env = {}
    else:
        dsn = make_conninfo(dsn, dbname=database)
        env = {**env, "PGDATABASE": database}
    return dsn, env


def server_of(dsn: str) -> str:
    """Which server a DSN reaches (host and port): a fleet's per-server cap counts by it."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(dsn)
    return f"{params.get('hostaddr') or params.get('host') or 'local'}:{params.get('port') or 5432}"


def embedded_bin() -> Path | None:
    """The embedded server's client programs, the last resort of runbook.pg.pgtools."""
    try:
        return sandbox.bin_dir()
    except SandboxError:
        return None


def plan_for(spec: RunSpec, prepared: Prepared, target: Target) -> plan.Plan:
    """What will run on `target`, as the command line selected it."""
    selection = plan.Selection(
        spec.targets, spec.tags, spec.skip_tags, prepared.extra, prepared.start_at
    )
    return plan.build(prepared.playbook, target, prepared.includes, selection)


def plan_listing(spec: RunSpec) -> tuple[plan.Plan, frozenset[int]]:
    """`--list-steps`: the plan for the first target as it would run, and the
    steps that may write (by index). Loads and checks; connects to nothing."""
    from runbook.actions import writes

    prepared = prepare(spec)
    the_plan = plan_for(spec, prepared, prepared.targets[0])
    writing = frozenset(i for i, node in the_plan.by_index().items() if writes(node.step))
    return the_plan, writing
