"""A prepared run, per target: one after another, or fanned out over a
group's targets (runbook.fleet); one RunOutcome each, and the exit code of
them all."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from runbook import consent, permission, variables
from runbook.clock import Clock
from runbook.context import Notifier, Prompter, TargetFacts
from runbook.engine import Engine, Options, Reporter, Resume, RunContext
from runbook.errors import ExitCode, UsageError
from runbook.fleet.fanout import NOT_STARTED, Fanout, Sessions
from runbook.fleet.group import (
    FleetView,
    NotifierJournal,
    fan_out,
    one_at_a_time,
    record_not_run,
)
from runbook.journal.recorder import Recorder
from runbook.journal.records import ApprovalRecord
from runbook.journal.store import JournalStore
from runbook.model import Inventory, Playbook, Strategy, Target
from runbook.outcome import RunOutcome, RunStatus
from runbook.pg import pgtools
from runbook.pg.db import ConnectSpec, Session
from runbook.plan import PlannedStep
from runbook.redact import Redactor
from runbook.service.spec import (
    Prepared,
    RunSpec,
    drill_dsn,
    new_run_id,
    open_journal,
    operator,
    plan_for,
    prepare,
    resolve_dsn,
    server_of,
)

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
