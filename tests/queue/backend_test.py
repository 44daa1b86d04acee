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


def test_a_journal_server_out_of_reach_is_an_error_not_a_traceback(tmp_path: Any) -> None:
    import subprocess
    import sys

    (tmp_path / "inventory.yaml").write_text("targets:\n  db: {dsn: 'host=/nowhere'}\n")
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "p.yaml").write_text(
        "name: p\nkind: check\nsteps:\n  - {name: a, query: SELECT 1}\n"
    )
    gone = "host=/nowhere/at/all dbname=ops user=ops password=s3cret"  # no server there
    env = {**os.environ, "RUNBOOK_JOURNAL": gone}
    for argv in (
        ["run", "playbooks/p.yaml", "-t", "db", "--queue"],
        ["queue"],
        ["queue", "--drain"],
    ):
        # A process of its own: a traceback is what the operator would see.
        done = subprocess.run(
            [sys.executable, "-m", "runbook", *argv],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 3, (argv, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, argv
        assert "cannot reach the queue in the journal" in done.stderr, (argv, done.stderr)
        assert "s3cret" not in done.stderr
