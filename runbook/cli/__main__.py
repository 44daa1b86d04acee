"""`python -m runbook.cli`, as `runbook`."""

from runbook.cli import main

main()
