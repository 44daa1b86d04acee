"""Checks of meaning, beyond the schema's shape: names, templates, files, cron.

Each check returns Problems located at the key or value at fault. They run on
model objects built by the loader, so the data is known to have the right shape.

- `playbook`: step ids, inventory references, schedules, severities, step rules
  (rollback, read-only, transactions, sql_file, include).
- `templates`: Jinja syntax and names, in the order the steps run.
- `inventory`: targets, groups, the severity scale, policies.
- `remembered`: passes remembered, so a run of unchanged files skips the checks.
"""

from runbook.checks.common import (
    BUILTIN_VARS,
    Context,
    includes_of,
    registered_names,
    sql_file_path,
)
from runbook.checks.inventory import check_inventory
from runbook.checks.playbook import check_playbook, run_on
from runbook.checks.remembered import passed, remember
from runbook.checks.templates import needed_before

__all__ = [
    "BUILTIN_VARS",
    "Context",
    "check_inventory",
    "check_playbook",
    "includes_of",
    "needed_before",
    "passed",
    "registered_names",
    "remember",
    "run_on",
    "sql_file_path",
]
