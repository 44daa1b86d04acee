"""The engine: runs a plan step by step; the one place exceptions become statuses.

- `core`: the run loop, structure (include, transaction blocks), halting.
- `action`: one action step: attempts, savepoints, tracked transactions, gates.
- `failures`: exceptions → error text, SQLSTATE, failed outcomes; redaction.
- `undo`: the rollback phase (on_failure: rollback, `runbook rollback`).
- `scope`: what a step's templates see (run values, registered results, vars).
- `summary`: how the run ended: status, reason, severity, Nagios status.
"""

from runbook.engine.core import Done, Engine, Options, Reporter, Resume, RunContext

__all__ = ["Done", "Engine", "Options", "Reporter", "Resume", "RunContext"]
