"""The queue's refusals that need no worker."""

from __future__ import annotations

import os
from typing import Any


def test_the_queue_needs_a_postgresql_journal(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from runbook.cli import main

    (tmp_path / "inventory.yaml").write_text("targets:\n  db: {dsn: 'host=/nowhere'}\n")
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "p.yaml").write_text(
        "name: p\nkind: check\nsteps:\n  - {name: a, query: SELECT 1}\n"
    )
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        env = {"RUNBOOK_JOURNAL": None}
        result = CliRunner().invoke(
            main, ["run", "playbooks/p.yaml", "-t", "db", "--queue"], env=env
        )
    finally:
        os.chdir(old)
    assert result.exit_code == 2 and "PostgreSQL journal" in result.output
