"""What a run has done so far: the outcomes, the steps to undo, the halt.

One `RunState` per run, owned by `core.Engine`; the helpers (blocks, undo,
summary) read and change it through the object they are given, so none of
them needs the engine itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runbook.outcome import Outcome, RunStatus
from runbook.plan import PlannedStep


@dataclass
class Done:
    """A step whose work committed: what rollback would undo."""

    ps: PlannedStep
    scope: dict[str, Any]
    run_id: str
    seq: int | None
    # One iteration of a looped step: its number, and its item and loop_index
    # (over everything else its rollback steps see).
    iteration: int | None = None
    own: dict[str, Any] = field(default_factory=dict)


@dataclass
class Halt:
    """The step the run stopped at, and what its `on_failure` asks for."""

    outcome: Outcome
    policy: str  # halt | rollback
    interrupted: bool = False


@dataclass
class RunState:
    """The run's mutable state: every step's outcome, what to undo, why it stopped."""

    outcomes: dict[int, Outcome] = field(default_factory=dict)  # by step index
    ordered: list[Outcome] = field(default_factory=list)  # as they ended
    halt: Halt | None = None
    completed: list[Done] = field(default_factory=list)
    # Steps done inside an open transaction block: (seq, outcome); recorded
    # as ok only once the block commits.
    pending: list[tuple[int, Outcome]] = field(default_factory=list)
    # While undoing: the index of the step being undone, and whether a
    # rollback step failed.
    undoing: int | None = None
    undo_failed: bool = False
    undo_interrupted: bool = False  # that rollback step was stopped by Ctrl-C
    undo_summary: str = ""
    # The whole target passed over before its first step (runbook.engine.core
    # Engine._passed_over): the run's status and why.
    passed_over: tuple[RunStatus, str] | None = None

    def stopped(self) -> bool:
        """Whether the steps at hand must stop: a halt, or (undoing) a failed rollback step."""
        return self.undo_failed if self.undoing is not None else self.halt is not None
