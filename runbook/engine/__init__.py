"""The engine: runs a plan step by step; the one place exceptions become statuses.

- `core`: the run loop: recording each step, halting, deciding what follows.
- `action`: one action step: attempts, savepoints, tracked transactions, gates;
  it returns how the step ended, which `core` records.
- `blocks`: include and transaction blocks (steps that hold steps).
- `loops`: looped steps (`loop:`): one record and one action run per item,
  and the step's summary, which `core` records and decides on.
- `failures`: exceptions → error text, SQLSTATE, failed outcomes; redaction.
- `undo`: the rollback phase (on_failure: rollback, `runbook rollback`).
- `scope`: what a step's templates see (run values, registered results, vars).
- `summary`: how the run ended: status, reason, severity, Nagios status.
- `state`: what the run has done so far (outcomes, completed steps, the halt).
- `ports`: what a run is given, and the engine as its helpers see it; the
  helpers import these, never `core`.
"""

from runbook.engine.core import Engine
from runbook.engine.ports import IterationDone, LoopDone, Options, Reporter, Resume, RunContext
from runbook.engine.state import Done

__all__ = [
    "Done",
    "Engine",
    "IterationDone",
    "LoopDone",
    "Options",
    "Reporter",
    "Resume",
    "RunContext",
]
