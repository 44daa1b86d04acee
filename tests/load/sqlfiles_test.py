"""sql_file: one reader for validation, the check cache and the run, with the
project's bounds, and nothing but UTF-8 text without NUL from a regular file."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from runbook.load import sqlfiles

from ..conftest import Project

STEP = """name: f
kind: change
steps:
  - name: From a file
    sql_file: {name}
"""


def table(project: Project) -> None:
    with psycopg.connect(project.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS nt")
        conn.execute("CREATE TABLE nt (id int)")
        conn.execute("INSERT INTO nt SELECT generate_series(1, 3)")


def ids(project: Project) -> list[int]:
    with psycopg.connect(project.dsn) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM nt ORDER BY id")]


def refused_by_both(project: Project, playbook: Path, message: str) -> None:
    """validate and run: exit 2, the step's place, no traceback, nothing ran."""
    runs = len(project.runs()) if (project.root / ".runbook" / "journal.sqlite").exists() else 0
    for command in ("validate", "run"):
        result = project.run(command, str(playbook))
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert f"playbooks/{playbook.name}:5:15: $.steps[0].sql_file: {message}" in result.output
    assert ids(project) == [1, 2, 3]
    if (project.root / ".runbook" / "journal.sqlite").exists():
        assert len(project.runs()) == runs


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"DELETE FROM nt WHERE id = 2\0 AND false\n",
            "sql_file 'x.sql' holds a NUL character at line 1, column 28",
        ),
        (
            b"SELECT 1;\nDELETE FROM nt WHERE name = 'caf\xe9'\n",
            "sql_file 'x.sql' is not valid UTF-8 (byte 0xe9 at line 2, column 33)",
        ),
    ],
    ids=["nul", "latin-1"],
)
def test_a_file_that_is_no_sql_text_is_refused_at_validation(
    project: Project, content: bytes, message: str
) -> None:
    table(project)
    (project.root / "sql").mkdir()
    (project.root / "sql" / "x.sql").write_bytes(content)
    refused_by_both(project, project.playbook(STEP.format(name="x.sql"), "f.yaml"), message)


def test_a_fifo_or_a_folder_is_refused_without_waiting(project: Project) -> None:
    table(project)
    (project.root / "sql" / "dir.sql").mkdir(parents=True)
    os.mkfifo(project.root / "sql" / "pipe.sql")
    for name in ("pipe.sql", "dir.sql"):
        playbook = project.playbook(STEP.format(name=name), "f.yaml")
        refused_by_both(project, playbook, f"sql_file {name!r} is not a regular file")


def test_a_file_swapped_during_the_run_is_refused_by_the_run(
    project: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Validation saw sql/link.sql inside sql/; a step before it re-points the
    link outside: the sql_file step reads through the same bounds and fails."""
    table(project)
    project.write("sql/inside.sql", "SELECT 1\n")
    outside = tmp_path_factory.mktemp("elsewhere") / "evil.sql"
    outside.write_text("DELETE FROM nt\n")
    os.symlink(project.root / "sql" / "inside.sql", project.root / "sql" / "link.sql")
    playbook = project.playbook(
        f"""name: swap
kind: change
steps:
  - name: Re-point the link
    shell: [ln, -sfn, "{outside}", sql/link.sql]
  - name: From the linked file
    sql_file: link.sql
""",
        "swap.yaml",
    )
    result = project.run("run", str(playbook))
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert "sql_file 'link.sql' points outside the project's sql/ folder" in result.output
    assert ids(project) == [1, 2, 3]
    assert [s["status"] for s in project.last_run()["steps"]][-1] == "failed"


def test_read_gives_the_resolved_file_and_what_it_held(tmp_path: Path) -> None:
    (tmp_path / "sql" / "sub").mkdir(parents=True)
    (tmp_path / "sql" / "sub" / "a.sql").write_text("\ufeffSELECT 1\n")
    found = sqlfiles.read(tmp_path, "sub/../sub/a.sql")
    assert found.text == "SELECT 1\n" and found.message is None
    assert found.path == (tmp_path / "sql" / "sub" / "a.sql").resolve()
    assert sqlfiles.read(tmp_path, "../sql/sub/a.sql").text == "SELECT 1\n"
    assert sqlfiles.read(tmp_path, "../x.sql").code == "sql-file-outside"
    assert sqlfiles.read(tmp_path, "a\0.sql").code == "nul"
    assert sqlfiles.read(tmp_path, "missing.sql").code == "sql-file-missing"
    big = tmp_path / "sql" / "big.sql"
    big.write_bytes(b"-" * (sqlfiles.MAX_BYTES + 1))
    assert sqlfiles.read(tmp_path, "big.sql").code == "too-large"
