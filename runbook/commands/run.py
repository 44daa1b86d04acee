"""`runbook run`: load → validate → plan → execute → record → report, per target."""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook import checks, collector, loader, pgtools, plan, project, sandbox, variables
from runbook.clock import Clock
from runbook.context import Notifier, Prompter, TargetFacts
from runbook.db import ConnectSpec, Session
from runbook.engine import Engine, Options, Reporter, Resume, RunContext
from runbook.errors import ExitCode, InvalidFiles, SandboxError, UsageError
from runbook.journal import Journal
from runbook.model import Inventory, Playbook, Target
from runbook.outcome import RunOutcome, RunStatus
from runbook.recorder import Recorder
from runbook.redact import Redactor, dsn_password


@dataclass
class Request:
    playbook: Path
    inventory: Path | None = None
    targets: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    tags: frozenset[str] = frozenset()
    skip_tags: frozenset[str] = frozenset()
    check: bool = False
    rehearse: bool = False
    yes: bool = False
    exit_codes: str = "default"
    mode: str | None = None
    parent_run: str | None = None
    # Continuing or undoing an earlier run (runbook resume / runbook rollback).
    resume: Resume | None = None
    undo_only: bool = False
    forced: str | None = None
    continues: str | None = None  # the run this resume or rollback claims


@dataclass
class Prepared:
    """Everything a run needs, validated before anything connects."""

    playbook: Playbook
    inventory: Inventory
    includes: dict[Path, Playbook]
    targets: list[Target]
    extra: dict[str, Any]
    secrets: set[str] = field(default_factory=set)
    # Looks for PostgreSQL client programs once per run, for all its targets.
    tools: pgtools.Finder = field(default_factory=lambda: pgtools.Finder(embedded_bin=embedded_bin))


def operator() -> str:
    return os.environ.get("RUNBOOK_OPERATOR") or getpass.getuser()


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def journal_path(inventory: Inventory) -> Path:
    env = os.environ.get("RUNBOOK_JOURNAL")
    return Path(env) if env else inventory.root / inventory.journal.path


def open_journal(inventory: Inventory) -> Journal:
    """The journal, with the key that signs its checkpoints if one is configured."""
    from runbook.journalkey import key_file_for

    return Journal(journal_path(inventory), key_file_for(inventory))


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


def prepare(req: Request) -> Prepared:
    """Load and check everything; raise an InputError (exit 2) before any connection."""
    inventory = load_inventory(req.inventory, req.playbook)
    ctx = checks.Context(inventory, inventory.root)
    playbook, problems = ctx.load(req.playbook)
    if playbook is None:
        raise InvalidFiles(problems)
    if not checks.passed(ctx, playbook):
        problems = checks.check_playbook(playbook, ctx)
        if problems:
            raise InvalidFiles(problems)
        checks.remember(ctx, playbook)
    includes = {path: pb for path, (pb, _) in ctx.cache.items() if pb is not None}
    extra = variables.parse_extra(req.extra)
    missing = [name for name, value in playbook.vars.items() if value is None and name not in extra]
    if missing:
        raise UsageError(
            f"{playbook.name} needs a value for {', '.join(missing)}: pass -e {missing[0]}=…"
        )
    secrets = {str(extra[name]) for name in playbook.secrets if name in extra}
    targets = plan.resolve_targets(playbook, inventory, req.targets)
    for target in targets:
        if target.read_only and playbook.kind != "check" and not (req.check or req.rehearse):
            raise UsageError(
                f"target {target.name!r} is read-only; only kind: check playbooks run there"
            )
    return Prepared(playbook, inventory, includes, targets, extra, secrets)


def resolve_dsn(target: Target, root: Path, secrets: set[str]) -> tuple[str, dict[str, str]]:
    """The target's DSN (starting the sandbox for `embedded`) and its libpq environment."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    if target.embedded:
        dsn = sandbox.dsn(root)
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
    found = dsn_password(dsn)
    if found:
        secrets.add(found)
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
    # target's server version (runbook.pgtools), chosen when it runs.
    return dsn, env


def embedded_bin() -> Path | None:
    """The embedded server's client programs, the last resort of runbook.pgtools."""
    try:
        return sandbox.bin_dir()
    except SandboxError:
        return None


def run(
    req: Request,
    make_reporter: Callable[[], Reporter],
    prompter: Prompter | None = None,
    notifier_for: Callable[[Inventory, Journal, Playbook, Target, str, Redactor], Notifier]
    | None = None,
) -> list[RunOutcome]:
    with collector.Quiet() as quiet:
        prepared = prepare(req)
        inventory, playbook = prepared.inventory, prepared.playbook
        secrets = set(prepared.secrets)
        base_by_target: dict[str, dict[str, Any]] = {}
        for target in prepared.targets:
            values = variables.resolve_all(playbook.vars, f"playbook {playbook.name}", secrets)
            values.update(variables.resolve_all(target.vars, f"target {target.name}", secrets))
            base_by_target[target.name] = values
        journal = open_journal(inventory)
        quiet.steps_begin()
        outcomes: list[RunOutcome] = []
        with contextlib.closing(journal):
            for target in prepared.targets:
                target_secrets = set(secrets)
                dsn, env = resolve_dsn(target, inventory.root, target_secrets)
                outcome = run_target(
                    req,
                    prepared,
                    target,
                    dsn,
                    env,
                    base_by_target[target.name],
                    target_secrets,
                    journal,
                    make_reporter(),
                    prompter,
                    notifier_for,
                )
                outcomes.append(outcome)
                if outcome.status is RunStatus.INTERRUPTED:
                    break
    return outcomes


def run_target(
    req: Request,
    prepared: Prepared,
    target: Target,
    dsn: str,
    env: dict[str, str],
    base_vars: dict[str, Any],
    secrets: set[str],
    journal: Journal,
    reporter: Reporter,
    prompter: Prompter | None,
    notifier_for: Callable[[Inventory, Journal, Playbook, Target, str, Redactor], Notifier] | None,
) -> RunOutcome:
    inventory, playbook = prepared.inventory, prepared.playbook
    redactor = Redactor(secrets)
    clock = Clock.from_environment()
    run_id = new_run_id()
    mode = req.mode or ("check" if req.check else "rehearse" if req.rehearse else "run")
    the_plan = plan.build(
        playbook,
        target,
        prepared.includes,
        plan.Selection(req.targets, req.tags, req.skip_tags, prepared.extra),
    )
    spec = ConnectSpec(
        target=target.name,
        dsn=dsn,
        application_name=f"runbook/{playbook.name}/{run_id}",
        connect_timeout=target.connect_timeout or inventory.defaults.connect_timeout,
        read_only=playbook.kind == "check" or req.check,
        statement_timeout=playbook.timeout or inventory.defaults.timeout,
        lock_timeout=playbook.lock_timeout or inventory.defaults.lock_timeout,
    )
    session = Session(spec)
    facts = {"name": target.name, "description": target.description, "tags": sorted(target.tags)}
    builtins = {
        "target": TargetFacts(facts, lambda: session.server_version),
        "run": {"id": run_id, "mode": mode, "operator": operator()},
        "playbook": {"name": playbook.name, "kind": playbook.kind, "path": str(playbook.path)},
        "now": clock.now(),
    }
    options = Options(
        mode=mode,
        check=req.check,
        rehearse=req.rehearse,
        assume_yes=req.yes,
        prompter=prompter,
        operator=operator(),
        timeout=playbook.timeout or inventory.defaults.timeout,
        lock_timeout=playbook.lock_timeout or inventory.defaults.lock_timeout,
        row_sample=inventory.journal.row_sample,
        root=inventory.root,
        scale=inventory.scale,
        session_env=env,
        client_tools=pgtools.TargetTools(prepared.tools, target.pg_bin),
        parent_run=req.parent_run,
        resume=req.resume,
        undo_only=req.undo_only,
        forced=req.forced,
        continues=req.continues,
        selection={
            "targets": list(req.targets),
            "tags": sorted(req.tags),
            "skip_tags": sorted(req.skip_tags),
        },
    )
    recorder = Recorder(journal, redactor, clock, inventory.journal.row_sample)
    if notifier_for is not None and not req.check and not req.rehearse:
        options.notifier = notifier_for(inventory, journal, playbook, target, run_id, redactor)
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
        return engine.run(spec.shown)
    finally:
        session.close()
        recorder.close()


def exit_code(outcomes: list[RunOutcome], mode: str) -> int:
    """The worst exit code of the runs; in nagios mode, the worst Nagios status."""
    if not outcomes:
        return int(ExitCode.OK)
    if mode == "nagios":
        return max(o.nagios for o in outcomes)
    order = [ExitCode.INTERRUPTED, ExitCode.STEP_ERROR, ExitCode.GATE_FAILED, ExitCode.OK]
    codes = {o.exit_code for o in outcomes}
    return int(next(code for code in order if code in codes))
