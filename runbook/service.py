"""The run service: load → validate → plan → execute → record → report, per target.

What the CLI calls to run a playbook (`run`, `resume`, `rollback`, the demo),
and what a scheduler, drills, the fleet and workers are to call: a RunSpec,
which is plain data (`to_dict`/`from_dict`), in; one RunOutcome per target
out. Nothing here keeps state between calls, so threads may run playbooks at
once, each with its own reporter.
"""

from __future__ import annotations

import contextlib
import difflib
import getpass
import os
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from runbook import checks, consent, permission, plan, variables
from runbook.clock import Clock
from runbook.context import Notifier, Prompter, TargetFacts
from runbook.engine import Engine, Options, Reporter, Resume, RunContext
from runbook.errors import ExitCode, InvalidFiles, SandboxError, UsageError
from runbook.fleet import computed
from runbook.fleet.fanout import NOT_STARTED, Fanout, Sessions
from runbook.fleet.group import (
    FleetView,
    NotifierJournal,
    fan_out,
    limited,
    one_at_a_time,
    record_not_run,
)
from runbook.journal.recorder import Recorder
from runbook.journal.records import ApprovalRecord
from runbook.journal.store import JournalStore, config_for, open_store
from runbook.load import loader, project
from runbook.model import Inventory, Playbook, Strategy, Target
from runbook.outcome import RunOutcome, RunStatus
from runbook.pg import pgtools, sandbox
from runbook.pg.db import ConnectSpec, Session
from runbook.plan import PlannedStep
from runbook.redact import Redactor


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
    inventory = loader.require_inventory(found)
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


NotifierFor = Callable[[Inventory, NotifierJournal, Playbook, Target, str, Redactor], Notifier]


def run(
    spec: RunSpec,
    make_reporter: Callable[[], Reporter],
    prompter: Prompter | None = None,
    notifier_for: NotifierFor | None = None,
    *,
    resume: Resume | None = None,
    on_loaded: Callable[[], None] | None = None,
    ask: consent.Ask | None = None,
    step_by_step: Callable[[PlannedStep], bool] | None = None,
    approval_wait: Callable[[ApprovalRecord], None] | None = None,
    on_outcome: Callable[[RunOutcome], None] | None = None,
    view: FleetView | None = None,
    interrupts: Sessions | None = None,
) -> list[RunOutcome]:
    """Run `spec` on each of its targets in turn; a resume or rollback passes what
    the earlier run completed. `on_loaded` is called once everything is loaded
    and checked, before the first target (the CLI tunes the garbage collector).
    `ask` puts the question before a run on a protected target or an emergency
    (runbook.consent); without it such a run needs --yes --confirm-target.
    `step_by_step` (--step) is asked before each step; False skips it.
    `approval_wait` is told when the run waits for an approval at a terminal
    (without it, a run that needs one parks: runbook.approval). `view` shows
    the targets of a group run at once (the strategy's forks, or --forks).
    `interrupts` is given each target's session, for a long-lived process (a
    worker) to interrupt its runs from another thread as Ctrl-C would."""
    prepared = prepare(spec)
    inventory, playbook = prepared.inventory, prepared.playbook
    if spec.run_id is not None and len(prepared.targets) != 1:
        raise UsageError(f"a run id is given for one target; {playbook.name} has several here")
    secrets = set(prepared.secrets)
    base_by_target: dict[str, dict[str, Any]] = {}
    for target in prepared.targets:
        values = variables.resolve_all(playbook.vars, f"playbook {playbook.name}", secrets)
        values.update(variables.resolve_all(target.vars, f"target {target.name}", secrets))
        base_by_target[target.name] = values
    # Every target resolved before the first one runs: a DSN whose environment
    # variable is unset stops the whole group here, with nothing half-run.
    resolved: dict[str, tuple[str, dict[str, str], set[str]]] = {}
    for target in prepared.targets:
        target_secrets = set(secrets)
        dsn, env = resolve_dsn(target, inventory.root, target_secrets)
        if spec.drill is not None:
            dsn, env = drill_dsn(spec.drill, dsn, env, inventory.root)
        resolved[target.name] = (dsn, env, target_secrets)
    # Who runs it, read once (getpass asks the password database) for every target.
    who = spec.operator = spec.operator or operator()
    journal = open_journal(inventory)
    outcomes: list[RunOutcome] = []
    alerts = NotifierJournal(journal.config)
    with contextlib.closing(journal), contextlib.closing(alerts):
        # A drill writes to its marked copy only (each connection checks the mark).
        given = (
            None
            if spec.drill is not None
            else permission.consent_for(spec, prepared, journal, ask, who)
        )
        needs = None if spec.drill is not None else permission.approval_needed(spec, prepared)
        if on_loaded is not None:
            on_loaded()
        approving = permission.Approving(*needs, approval_wait) if needs is not None else None

        strategy = playbook.strategy
        forks = spec.forks or strategy.forks or inventory.defaults.forks
        fanned = len(prepared.targets) > 1 and (forks > 1 or strategy != Strategy())
        reporter_for = view.make_reporter if fanned and view is not None else make_reporter
        if fanned and step_by_step is not None:
            raise UsageError(
                "--step asks before each step of one run: not with targets at once (--forks 1)"
            )
        asking = one_at_a_time(prompter) if fanned and prompter is not None else None

        def one(
            target: Target, sessions: Sessions | None = None, not_run: str | None = None
        ) -> RunOutcome:
            dsn, env, target_secrets = resolved[target.name]
            told = sessions or interrupts
            return run_target(
                spec, prepared, target, dsn, env, base_by_target[target.name], target_secrets,
                journal, reporter_for(), asking(target) if asking else prompter, notifier_for,
                resume, given, step_by_step, approving, told.add if told else None, not_run,
                alerts=alerts,
            )  # fmt: skip

        if fanned:
            spec.fleet = spec.fleet or new_run_id()
            if view is not None:
                view.begin(spec.fleet, playbook.name, [t.name for t in prepared.targets], forks)
            fan: Fanout[Target, RunOutcome] = Fanout(
                forks, inventory.defaults.per_server, lambda t: server_of(resolved[t.name][0])
            )
            outcomes = fan_out(
                fan,
                prepared.targets,
                strategy,
                one,
                view.ended if view is not None else on_outcome,
                (lambda t: view.started(t.name)) if view is not None else None,
            )
        else:
            if len(prepared.targets) > 1:
                # A group one target after another is a fleet run all the same:
                # one id for `show` and --rerun-failed.
                spec.fleet = spec.fleet or new_run_id()
            left = list(prepared.targets)
            while left:
                outcome = one(left.pop(0))
                outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
                if outcome.status is RunStatus.INTERRUPTED:
                    break
            # After a Ctrl-C, journaled as a fan-out's are.
            outcomes += record_not_run(left, NOT_STARTED, one, on_outcome)
    return outcomes


def run_target(
    spec: RunSpec,
    prepared: Prepared,
    target: Target,
    dsn: str,
    env: dict[str, str],
    base_vars: dict[str, Any],
    secrets: set[str],
    journal: JournalStore,
    reporter: Reporter,
    prompter: Prompter | None,
    notifier_for: NotifierFor | None,
    resume: Resume | None = None,
    given: dict[str, Any] | None = None,
    step_by_step: Callable[[PlannedStep], bool] | None = None,
    approving: permission.Approving | None = None,
    on_session: Callable[[Session], None] | None = None,
    not_run: str | None = None,
    *,
    alerts: NotifierJournal,
) -> RunOutcome:
    inventory, playbook = prepared.inventory, prepared.playbook
    redactor = Redactor(secrets)
    clock = Clock.from_environment()
    run_id = spec.run_id or new_run_id()
    who = spec.operator or operator()
    mode = spec.mode or ("check" if spec.check else "rehearse" if spec.rehearse else "run")
    the_plan = plan_for(spec, prepared, target)
    connect = ConnectSpec(
        target=target.name,
        dsn=dsn,
        application_name=f"runbook/{playbook.name}/{run_id}",
        connect_timeout=target.connect_timeout or inventory.defaults.connect_timeout,
        read_only=playbook.kind == "check" or spec.check,
        statement_timeout=playbook.timeout or inventory.defaults.timeout,
        lock_timeout=playbook.lock_timeout or inventory.defaults.lock_timeout,
        drill_mark=spec.drill["mark"] if spec.drill is not None else None,
    )
    session = Session(connect)
    if on_session is not None:
        on_session(session)  # a fleet's Ctrl-C interrupts it from another thread
    facts = {"name": target.name, "description": target.description, "tags": sorted(target.tags)}
    builtins = {
        "target": TargetFacts(facts, lambda: session.server_version),
        "run": {
            "id": run_id,
            "mode": mode,
            "operator": who,
            "date": clock.now().date().isoformat(),  # UTC, for file names (export:)
        },
        "playbook": {"name": playbook.name, "kind": playbook.kind, "path": str(playbook.path)},
        "now": clock.now(),
    }
    options = Options(
        mode=mode,
        check=spec.check,
        rehearse=spec.rehearse,
        assume_yes=spec.yes,
        prompter=prompter,
        operator=who,
        timeout=playbook.timeout or inventory.defaults.timeout,
        lock_timeout=playbook.lock_timeout or inventory.defaults.lock_timeout,
        row_sample=inventory.journal.row_sample,
        root=inventory.root,
        scale=inventory.scale,
        session_env=env,
        client_tools=pgtools.TargetTools(prepared.tools, target.pg_bin),
        parent_run=spec.parent_run,
        resume=resume,
        undo_only=spec.undo_only,
        forced=spec.forced,
        continues=spec.continues,
        consent=given,
        notify=spec.notify and not_run is None,
        step_by_step=step_by_step,
        not_run=not_run,
        # A drill's copy is a database of its own, never a standby.
        run_on="any" if spec.drill is not None else prepared.run_on,
        selection={
            "targets": list(spec.targets),
            "tags": sorted(spec.tags),
            "skip_tags": sorted(spec.skip_tags),
            **({"start_at": spec.start_at} if spec.start_at else {}),
            **({"fire": spec.fire} if spec.fire else {}),
            **({"fleet": spec.fleet} if spec.fleet else {}),
            **({"queued": spec.queued} if spec.queued else {}),
            **(
                {"drill": {"id": spec.drill["id"], "role": spec.drill["role"]}}
                if spec.drill
                else {}
            ),
        },
    )
    recorder = Recorder(journal, redactor, clock, inventory.journal.row_sample)
    if notifier_for is not None and options.notify and not spec.check and not spec.rehearse:
        options.notifier = notifier_for(inventory, alerts, playbook, target, run_id, redactor)
    if approving is not None:
        options.approve = permission.gate(
            spec, prepared, target, journal, run_id, who, clock, approving, options.notifier
        )
    try:
        context = RunContext(
            run_id,
            session,
            recorder,
            reporter,
            options,
            redactor,
            clock,
            base_vars={**builtins, **base_vars},
            extra_vars=prepared.extra,
        )
        engine = Engine(the_plan, context)
        return engine.run(connect.shown)
    finally:
        session.close()
        recorder.close()


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


def exit_code(outcomes: list[RunOutcome], mode: str) -> int:
    """The worst exit code of the runs; in nagios mode, the worst Nagios status."""
    if not outcomes:
        return int(ExitCode.OK)
    if mode == "nagios":
        return max(o.nagios for o in outcomes)
    order = [
        ExitCode.INTERRUPTED,
        ExitCode.STEP_ERROR,
        ExitCode.REFUSED,
        ExitCode.WAITING,
        ExitCode.GATE_FAILED,
        ExitCode.OK,
    ]
    codes = {o.exit_code for o in outcomes}
    return int(next(code for code in order if code in codes))
