"""The run service: load → validate → plan → execute → record → report, per target.

What the CLI calls to run a playbook (`run`, `resume`, `rollback`, the demo),
and what a scheduler, drills, the fleet and workers are to call: a RunSpec,
which is plain data (`to_dict`/`from_dict`), in; one RunOutcome per target
out. Nothing here keeps state between calls, so threads may run playbooks at
once, each with its own reporter.
"""

from runbook.service.running import exit_code, run, run_target
from runbook.service.spec import (
    Prepared,
    RunSpec,
    drill_dsn,
    embedded_bin,
    load_checked,
    load_inventory,
    new_run_id,
    open_journal,
    operator,
    plan_for,
    plan_listing,
    prepare,
    resolve_dsn,
    server_of,
)

__all__ = [
    "Prepared",
    "RunSpec",
    "drill_dsn",
    "embedded_bin",
    "exit_code",
    "load_checked",
    "load_inventory",
    "new_run_id",
    "open_journal",
    "operator",
    "plan_for",
    "plan_listing",
    "prepare",
    "resolve_dsn",
    "run",
    "run_target",
    "server_of",
]
