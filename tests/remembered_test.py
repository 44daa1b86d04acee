"""Remembered check passes: skipped only while every file the checks read is unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook import checks
from runbook.load import loader
from runbook.service import load_inventory

from .conftest import Project

MAIN = """name: main
kind: check
vars: {limit: 3}
steps:
  - name: Count
    query: SELECT {{ limit }}::int AS n
    register: c
    gate: {that: c.scalar == 3}
  - name: From a file
    sql_file: count.sql
    writes: false
  - name: The shared part
    include: shared.yaml
"""
SHARED = """name: shared
kind: check
steps:
  - name: Shared query
    query: SELECT 1 AS one
"""


def make(project: Project) -> Path:
    project.write("sql/count.sql", "SELECT {{ limit }}::int AS n\n")
    project.playbook(SHARED, "shared.yaml")
    return project.playbook(MAIN, "main.yaml")


def passed(project: Project, playbook: Path) -> bool:
    inventory = load_inventory(project.root / "inventory.yaml", playbook)
    ctx = checks.Context(inventory, inventory.root)
    pb, _ = ctx.load(playbook)
    assert pb is not None
    return checks.passed(ctx, pb)


def test_a_run_remembers_its_pass_and_the_next_run_of_the_same_files_uses_it(
    project: Project,
) -> None:
    playbook = make(project)
    assert not passed(project, playbook)
    first = project.run("run", str(playbook))
    assert first.exit_code == 0, first.output
    assert list((project.root / ".runbook" / "cache" / "checks").glob("*.json"))
    assert passed(project, playbook)
    second = project.run("run", str(playbook))
    assert second.exit_code == 0, second.output
    assert [s["status"] for s in project.last_run()["steps"]] == ["ok", "ok", "ok", "ok"]


def test_a_changed_include_is_checked_again(project: Project) -> None:
    playbook = make(project)
    assert project.run("run", str(playbook)).exit_code == 0
    project.playbook(
        SHARED.replace("SELECT 1 AS one", "SELECT {{ nowhere }} AS one"), "shared.yaml"
    )
    assert not passed(project, playbook)
    result = project.run("run", str(playbook))
    assert result.exit_code == 2, result.output
    assert "'nowhere' is undefined" in result.output


def test_a_changed_or_missing_sql_file_is_checked_again(project: Project) -> None:
    playbook = make(project)
    assert project.run("run", str(playbook)).exit_code == 0
    project.write("sql/count.sql", "SELECT {{ nowhere }}::int AS n\n")
    result = project.run("run", str(playbook))
    assert result.exit_code == 2, result.output
    assert "'nowhere' is undefined" in result.output
    (project.root / "sql" / "count.sql").unlink()
    result = project.run("run", str(playbook))
    assert result.exit_code == 2, result.output
    assert "count.sql" in result.output


def test_a_changed_inventory_or_playbook_is_another_key(project: Project) -> None:
    playbook = make(project)
    assert project.run("run", str(playbook)).exit_code == 0
    inventory = project.root / "inventory.yaml"
    inventory.write_text(inventory.read_text() + "\n# edited\n")
    assert not passed(project, playbook)
    assert project.run("run", str(playbook)).exit_code == 0
    playbook.write_text(MAIN.replace("c.scalar == 3", "c.scalar == undefined_name"))
    result = project.run("run", str(playbook))
    assert result.exit_code == 2, result.output
    assert "'undefined_name' is undefined" in result.output


def test_a_damaged_entry_means_checking_again(project: Project) -> None:
    playbook = make(project)
    assert project.run("run", str(playbook)).exit_code == 0
    for entry in (project.root / ".runbook" / "cache" / "checks").glob("*.json"):
        entry.write_text("{not json")
    assert not passed(project, playbook)
    for entry in (project.root / ".runbook" / "cache" / "checks").glob("*.json"):
        entry.write_text('{"includes": {}, "sql_files": []}')
    assert not passed(project, playbook)
    assert project.run("run", str(playbook)).exit_code == 0
    assert passed(project, playbook)


def test_only_passes_are_remembered(project: Project) -> None:
    playbook = project.playbook(MAIN.replace("{{ limit }}::int", "{{ nowhere }}::int"), "bad.yaml")
    make(project)
    for _ in range(2):
        result = project.run("run", str(playbook))
        assert result.exit_code == 2
        assert "'nowhere' is undefined" in result.output
    assert not list((project.root / ".runbook" / "cache" / "checks").glob("*.json"))
    assert loader.cache_dir(project.root).is_dir()  # the documents themselves are cached


def test_other_code_is_another_key(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """A check added to a working copy (same version number) is not skipped."""
    from runbook.checks import remembered

    playbook = make(project)
    assert project.run("run", str(playbook)).exit_code == 0
    assert passed(project, playbook)
    monkeypatch.setattr(remembered, "_code", lambda: "a changed runbook")
    assert not passed(project, playbook)


def test_a_remembered_run_compiles_its_templates_itself(project: Project) -> None:
    from runbook.sqltemplate import sqlprogram

    playbook = make(project)
    first = project.run("run", str(playbook))
    assert first.exit_code == 0, first.output
    # As a new process would be: nothing compiled yet, and the cache brings none.
    sqlprogram.PROGRAMS.clear()
    assert passed(project, playbook)
    assert not sqlprogram.PROGRAMS
    second = project.run("run", str(playbook))
    assert second.exit_code == 0, second.output
    rendered = [s["rendered"] for s in project.runs()[0]["steps"]]
    assert [s["rendered"] for s in project.last_run()["steps"]] == rendered


def test_a_cache_entry_holds_a_verdict_and_never_sql(project: Project) -> None:
    """Whatever a cache file says, what is sent is rendered from the playbook."""
    import json

    playbook = make(project)
    assert project.run("run", str(playbook)).exit_code == 0
    entries = list((project.root / ".runbook" / "cache" / "checks").glob("*.json"))
    assert entries
    for entry in entries:
        data = json.loads(entry.read_text())
        assert set(data) == {"read"}
        data["programs"] = {"SELECT {{ n }}::int AS n": {"statements": [[["DROP TABLE t", "x"]]]}}
        entry.write_text(json.dumps(data))
    assert passed(project, playbook)  # the checks' pass still stands
    result = project.run("run", str(playbook))
    assert result.exit_code == 0, result.output
    assert project.last_run()["steps"][0]["rendered"] == "SELECT $1::int AS n"


# --- what the checks read, re-resolved: symlinks, folders, the project's bounds


DELETE_ONE = """name: link
kind: change
steps:
  - name: From the linked file
    sql_file: link.sql
"""


def _table(project: Project, rows: int = 3) -> None:
    import psycopg

    with psycopg.connect(project.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS nt")
        conn.execute("CREATE TABLE nt (id int)")
        conn.execute(f"INSERT INTO nt SELECT generate_series(1, {rows})")


def _ids(project: Project) -> list[int]:
    import psycopg

    with psycopg.connect(project.dsn) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM nt ORDER BY id")]


def _refused(result: object, where: str) -> None:
    output = getattr(result, "output", "")
    assert getattr(result, "exit_code", None) == 2, output
    assert "Traceback" not in output
    assert where in output, output


def test_a_sql_file_symlink_re_pointed_outside_after_a_pass_is_refused_by_run(
    project: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import os

    _table(project)
    project.write("sql/inside.sql", "SELECT 1\n")
    outside = tmp_path_factory.mktemp("elsewhere") / "evil.sql"
    outside.write_text("DELETE FROM nt\n")
    os.symlink(project.root / "sql" / "inside.sql", project.root / "sql" / "link.sql")
    playbook = project.playbook(DELETE_ONE, "link.yaml")
    assert project.run("run", str(playbook)).exit_code == 0
    assert passed(project, playbook)
    (project.root / "sql" / "link.sql").unlink()
    os.symlink(outside, project.root / "sql" / "link.sql")
    assert not passed(project, playbook)
    _refused(project.run("validate", str(playbook)), "link.yaml:5:15")
    runs = len(project.runs())
    result = project.run("run", str(playbook))
    _refused(result, "link.yaml:5:15: $.steps[0].sql_file: sql_file 'link.sql' points outside")
    assert _ids(project) == [1, 2, 3]
    assert len(project.runs()) == runs  # nothing started


def test_a_swapped_sql_folder_is_checked_again(
    project: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import os

    _table(project)
    project.write("real/link.sql", "SELECT 1\n")
    os.symlink(project.root / "real", project.root / "sql")
    playbook = project.playbook(DELETE_ONE, "link.yaml")
    assert project.run("run", str(playbook)).exit_code == 0
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "link.sql").write_text("DELETE FROM nt\n")
    (project.root / "sql").unlink()
    os.symlink(elsewhere, project.root / "sql")
    # sql/ itself now leads elsewhere: the same name, the same bounds, another file.
    assert not passed(project, playbook)
    result = project.run("run", str(playbook))
    assert result.exit_code == 0, result.output  # sql/ is the project's, wherever it lives
    assert _ids(project) == []  # ...and what ran is what was checked again, not the old pass
    (elsewhere / "link.sql").write_text("DELETE FROM nt WHERE id = 1\0 AND false\n")
    _table(project)
    result = project.run("run", str(playbook))
    _refused(result, "link.yaml:5:15: $.steps[0].sql_file: sql_file 'link.sql' holds a NUL")
    assert _ids(project) == [1, 2, 3]


def test_an_include_re_pointed_outside_after_a_pass_is_refused(
    project: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import os

    _table(project)
    project.playbook(SHARED, "real-shared.yaml")
    os.symlink(
        project.root / "playbooks" / "real-shared.yaml", project.root / "playbooks" / "s.yaml"
    )
    playbook = project.playbook(
        "name: inc\nkind: change\nsteps:\n  - name: Shared\n    include: s.yaml\n", "inc.yaml"
    )
    assert project.run("run", str(playbook)).exit_code == 0
    assert passed(project, playbook)
    outside = tmp_path_factory.mktemp("elsewhere") / "evil.yaml"
    outside.write_text(SHARED.replace("SELECT 1 AS one", "DELETE FROM nt"))
    (project.root / "playbooks" / "s.yaml").unlink()
    os.symlink(outside, project.root / "playbooks" / "s.yaml")
    assert not passed(project, playbook)
    result = project.run("run", str(playbook))
    _refused(
        result, "inc.yaml:5:14: $.steps[0].include: include 's.yaml' points outside the project"
    )
    assert _ids(project) == [1, 2, 3]


def test_another_inventory_named_by_the_environment_is_another_key(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    playbook = make(project)
    assert project.run("run", str(playbook)).exit_code == 0
    other = project.write("other/inventory.yaml", (project.root / "inventory.yaml").read_text())
    monkeypatch.setenv("RUNBOOK_INVENTORY", str(other))
    inventory = load_inventory(other, playbook)
    ctx = checks.Context(inventory, inventory.root)
    pb, _ = ctx.load(playbook)
    assert pb is not None
    assert not checks.passed(ctx, pb)  # another project root: its own sql/, its own pass


def test_an_entry_is_valid_only_for_what_it_read_not_for_the_paths(project: Project) -> None:
    """Content swapped under the same path (same size, same time) is a miss."""
    import os

    playbook = make(project)
    assert project.run("run", str(playbook)).exit_code == 0
    sql = project.root / "sql" / "count.sql"
    stat = sql.stat()
    sql.write_text("SELECT {{ nowher }}::int AS n\n")
    os.utime(sql, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert not passed(project, playbook)
    _refused(project.run("run", str(playbook)), "'nowher' is undefined")


def test_cache_files_are_private(project: Project) -> None:
    """A 0600 inventory holding a password: nothing under .runbook/cache can be
    read by group or others, and older wide entries are tightened."""
    import os
    import stat

    inventory = project.root / "inventory.yaml"
    inventory.write_text(
        inventory.read_text().replace(
            "default_target: db",
            "  other:\n    dsn: postgresql://u@h/d\n    password: s3cr3t-pw\ndefault_target: db",
        )
    )
    os.chmod(inventory, 0o600)
    playbook = make(project)
    assert project.run("run", str(playbook)).exit_code == 0
    cache = project.root / ".runbook" / "cache"
    found = [p for p in cache.rglob("*")]
    assert any(b"s3cr3t-pw" in p.read_bytes() for p in found if p.is_file())  # it is cached...
    for path in [cache, *found]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, (path, oct(mode))  # ...but private
    for path in found:
        if path.is_file():
            os.chmod(path, 0o644)
    os.chmod(cache / "documents", 0o755)
    assert project.run("run", str(playbook)).exit_code == 0
    for path in [cache, *cache.rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_entries_another_user_could_write_are_not_believed(project: Project) -> None:
    import os

    playbook = make(project)
    assert project.run("run", str(playbook)).exit_code == 0
    assert passed(project, playbook)
    for entry in (project.root / ".runbook" / "cache" / "checks").glob("*.json"):
        os.chmod(entry, 0o666)
    assert not passed(project, playbook)
