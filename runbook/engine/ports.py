"""What the engine is given, and what its helpers see of it.

`RunContext`, `Options`, `Resume` and a `Reporter` are what a run is started
with. `Run` and `Steps` are the engine as the step helpers see it: `action`
reads the run (and returns how its step ended, which the core records);
`blocks` and `undo` also call back to run, skip and end steps. `core.Engine`
is their one implementation; the helpers import these, never `core`, so the
dependency goes one way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from runbook.clock import Clock
from runbook.context import Notifier, Prompter, RunInfo
from runbook.engine.gates import GateCheck
from runbook.engine.scope import Registered
from runbook.engine.state import RunState
from runbook.journal.recorder import Recorder
from runbook.model import Scale
from runbook.outcome import Outcome, RunOutcome, Status
from runbook.pg.db import Session
from runbook.pg.pgtools import TargetTools
from runbook.plan import Plan, PlannedStep
from runbook.redact import Redactor
from runbook.results import Result


class Reporter(Protocol):
    def run_started(self, plan: Plan, run_id: str) -> None: ...
    def step_started(self, ps: PlannedStep) -> None: ...
    def step_finished(self, outcome: Outcome) -> None: ...
    def run_finished(self, outcome: RunOutcome) -> None: ...


@dataclass
class IterationDone:
    """One iteration of a looped step that an earlier run completed."""

    run_id: str
    seq: int | None
    item: Any  # as journaled (redacted)
    result: Result | None


@dataclass
class LoopDone:
    """What earlier runs did of one looped step: the items the latest one
    recorded (as journaled: redacted, JSON) and the iterations completed."""

    items: list[Any] | None
    done: dict[int, IterationDone] = field(default_factory=dict)


@dataclass
class Resume:
    """What an earlier run (or `runbook rollback`'s target run) completed."""

    parent: str
    done: dict[int, tuple[str, int | None]]  # step index → (run id, seq) where it completed
    runtime: dict[str, Any] = field(default_factory=dict)  # registered results restored
    # Rollback steps already committed, per step undone: an undo goes on, not again.
    undo_done: dict[int, set[int]] = field(default_factory=dict)
    # Looped steps, by index; rollback steps committed per (step, iteration) undone.
    loops: dict[int, LoopDone] = field(default_factory=dict)
    undo_iter_done: dict[tuple[int, int], set[int]] = field(default_factory=dict)
    force: bool = False  # --force: go on although a loop's items changed (recorded)


@dataclass
class Options:
    mode: str = "run"
    check: bool = False
    rehearse: bool = False
    assume_yes: bool = False
    prompter: Prompter | None = None
    operator: str = "unknown"
    timeout: float = 300.0
    lock_timeout: float = 5.0
    row_sample: int = 20
    root: Path = field(default_factory=Path.cwd)
    scale: Scale = field(default_factory=Scale.default)
    notifier: Notifier | None = None
    session_env: dict[str, str] = field(default_factory=dict)
    # The target's PostgreSQL client programs, chosen when a shell step needs them.
    client_tools: TargetTools | None = None
    parent_run: str | None = None
    resume: Resume | None = None
    undo_only: bool = False  # `runbook rollback`: only undo what `resume` lists
    forced: str | None = None
    continues: str | None = None
    selection: dict[str, Any] = field(default_factory=dict)
    consent: dict[str, Any] | None = None  # who let it start (runbook.consent)
    notify: bool = True  # False (--no-notify): no incidents, no notify or escalate steps
    # --step: asked before each step (not while undoing); False skips the step.
    step_by_step: Callable[[PlannedStep], bool] | None = None
    # Four eyes (runbook.approval): asked before each action with the step and
    # what renders its statement (a step-level approval is bound to it); raises
    # AwaitingApproval (the run parks) or Declined (denied), returns when approved.
    approve: Callable[[PlannedStep, Callable[[], str]], None] | None = None
    # A fleet's target that is not to run (its failure budget tripped, or a
    # Ctrl-C came first): recorded with every step not_run, for this reason,
    # connecting to nothing.
    not_run: str | None = None
    run_on: str = "any"  # primary | standby: a server of the other kind is skipped


@dataclass
class RunContext:
    """Everything one run of a plan on its target works with, besides the plan."""

    run_id: str
    session: Session
    recorder: Recorder
    reporter: Reporter
    options: Options
    redactor: Redactor
    clock: Clock
    base_vars: Mapping[str, Any] = field(default_factory=dict)  # built-ins and vars
    extra_vars: Mapping[str, Any] = field(default_factory=dict)  # -e


class Run(Protocol):
    """The run an action step works in: its services, values and state."""

    session: Session
    recorder: Recorder
    reporter: Reporter
    options: Options
    redactor: Redactor
    clock: Clock
    info: RunInfo
    runtime: Registered
    gates: GateCheck
    state: RunState


class Steps(Run, Protocol):
    """The calls back into the engine that blocks (their children) and undo
    (rollback steps) make: steps run, skipped and ended as any other."""

    def run_steps(
        self,
        steps: tuple[PlannedStep, ...],
        layers: tuple[dict[str, Any], ...],
        in_block: bool = False,
    ) -> None: ...

    def run_planned(
        self, ps: PlannedStep, layers: tuple[dict[str, Any], ...], in_block: bool
    ) -> None: ...

    def skip_tree(self, ps: PlannedStep, reason: str, status: Status = Status.SKIPPED) -> None: ...

    def fail_before_start(self, ps: PlannedStep, exc: BaseException) -> None: ...

    def failure(
        self, ps: PlannedStep, error: BaseException, started: float, attempts: int
    ) -> Outcome: ...

    def end(
        self,
        ps: PlannedStep,
        seq: int,
        outcome: Outcome,
        registered: Any = None,
        pending: bool = False,
        durable: bool = True,
        decide: bool = True,
        counted: bool = True,
    ) -> None: ...

    def done(self, ps: PlannedStep, scope: dict[str, Any], seq: int) -> None: ...
