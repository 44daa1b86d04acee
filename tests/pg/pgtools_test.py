"""Client programs suited to the target's server: chosen by version, named by
`run -v` and in the journal, a mismatch always shown."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from runbook.pg import pgtools, sandbox
from runbook.pg.pgtools import Install

from ..conftest import Project, client_programs_of, server_major


def fake_programs(folder: Path, version: str) -> Path:
    """A folder whose pg_dump and psql report `version` (a stand-in install)."""
    folder.mkdir(parents=True, exist_ok=True)
    for program in ("pg_dump", "psql"):
        path = folder / program
        path.write_text(f"#!/bin/sh\necho '{program} (PostgreSQL) {version}'\n")
        path.chmod(0o755)
    return folder


def install(major: int, source: str, where: str = "/x") -> Install:
    return Install(Path(f"{where}/{major}/{source}"), f"{major}.3", major, source)


def test_an_exact_major_wins_and_the_preferred_source_among_them() -> None:
    found = [
        install(18, "embedded"),
        install(15, "Debian"),
        install(15, "PATH"),
        install(16, "PATH"),
    ]
    choice = pgtools.choose(found, 15)
    assert choice.install == install(15, "PATH") and choice.note == ""


def test_no_exact_major_takes_the_nearest_newer_and_says_what_that_means() -> None:
    choice = pgtools.choose([install(18, "embedded"), install(16, "Debian")], 14)
    assert choice.install == install(16, "Debian")
    assert "no PostgreSQL 14 client programs found" in choice.note
    assert "may not restore into PostgreSQL 14" in choice.note


def test_only_older_programs_are_used_with_a_warning() -> None:
    choice = pgtools.choose([install(13, "Debian"), install(15, "Debian")], 18)
    assert choice.install == install(15, "Debian")
    assert "older than the server's 18" in choice.note and "refuses" in choice.note


def test_an_unknown_server_gets_the_newest_and_none_is_said_plainly() -> None:
    choice = pgtools.choose([install(15, "Debian"), install(18, "embedded")], None)
    assert choice.install == install(18, "embedded") and "unknown" in choice.note
    assert pgtools.choose([], 15).install is None


def test_the_finder_reads_real_programs_on_this_machine(tmp_path: Path) -> None:
    fake = fake_programs(tmp_path / "bin14", "14.9")
    finder = pgtools.Finder(search_path=str(fake), embedded_bin=sandbox.bin_dir)
    found = {(i.major, i.source) for i in finder.installs()}
    assert (14, "PATH") in found
    embedded = pgtools.read_version(sandbox.bin_dir())
    assert embedded is not None and (embedded[1], "embedded") in found
    if Path("/usr/lib/postgresql/15/bin/pg_dump").exists():
        assert any(i.major == 15 for i in finder.installs())
    assert finder.choose(140007).install == Install(fake.resolve(), "14.9", 14, "PATH")
    assert finder.choose(embedded[1] * 10000).install.major == embedded[1]  # type: ignore[union-attr]


def test_debians_version_picking_wrapper_on_path_is_not_taken_for_a_version(tmp_path: Path) -> None:
    wrapper = tmp_path / "share" / "pg_wrapper"
    wrapper.parent.mkdir()
    wrapper.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 99.1'\n")
    wrapper.chmod(0o755)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "pg_dump").symlink_to(wrapper)
    finder = pgtools.Finder(search_path=str(tmp_path / "bin"), debian_root=tmp_path / "none")
    assert all(i.major != 99 for i in finder.installs())


def test_pg_bin_is_used_as_given_and_a_useless_one_is_an_error(tmp_path: Path) -> None:
    fake = fake_programs(tmp_path / "custom", "16.2")
    choice = pgtools.Finder(search_path="").choose(150004, fake)
    assert choice.install is not None and choice.install.source == "pg_bin"
    assert "set by pg_bin: using 16.2 (newer than the server's 15)" in choice.note
    with pytest.raises(pgtools.ToolsError, match="holds no pg_dump or psql"):
        pgtools.Finder(search_path="").choose(150004, tmp_path)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("pg_dump -Fc", True),
        ("/usr/lib/postgresql/15/bin/psql -X", True),
        ("x | vacuumdb --analyze-only", True),
        ("echo mypsql psql.conf pg_dumpfile my-psql", False),
        ("backup.sh", False),
    ],
)
def test_a_command_naming_a_client_program_is_told_apart(text: str, named: bool) -> None:
    assert pgtools.mentions_client(text) is named


def test_run_v_names_the_programs_of_the_servers_version(project: Project) -> None:
    major = server_major(project.dsn)
    if not client_programs_of(major):
        pytest.skip(f"no client programs of PostgreSQL {major} on this machine")
    project.playbook(
        "name: v\nkind: change\nsteps:\n"
        "  - name: Version\n    shell: [pg_dump, --version]\n"
        "  - name: Which\n    query: SELECT {{ target.server_major }} AS m, {{ target.server_version }} AS n\n"
        "    register: w\n    gate: {that: 'w.first.m * 10000 <= w.first.n'}\n"
    )
    result = project.run("run", "playbooks/p.yaml", "-v")
    assert result.exit_code == 0, result.output
    assert f"client programs: PostgreSQL {major}." in result.output
    assert f"| pg_dump (PostgreSQL) {major}." in result.output
    assert "ran:" in result.output and "SELECT $1 AS m" in result.output
    step = project.last_run()["steps"][0]
    client = step["result"]["client"]
    assert client["server_major"] == major and client["version"].startswith(f"{major}.")
    assert os.path.isdir(client["bin"]) and client["note"] is None
    plain = project.run("run", "playbooks/p.yaml")
    assert "client programs:" not in plain.output and "ran:" not in plain.output


def test_a_step_naming_no_client_program_does_not_connect_for_one(project: Project) -> None:
    # An emergency playbook's shell steps must run while the database is down.
    project.write(
        "inventory.yaml",
        "targets:\n  db: {dsn: 'host=127.0.0.1 port=9 dbname=x connect_timeout=1'}\ndefault_target: db\n",
    )
    project.playbook(
        "name: d\nkind: change\nsteps:\n"
        "  - name: Plain\n    shell: {command: 'echo up'}\n"
        "  - name: Client while down\n    shell: [psql, --version]\n"
    )
    result = project.run("run", "playbooks/p.yaml", "-v")
    assert result.exit_code == 0, result.output
    steps = project.last_run()["steps"]
    assert "client" not in steps[0]["result"]
    assert "the server's version is unknown" in steps[1]["result"]["client"]["note"]
    assert "warning: the server's version is unknown" in result.output


def test_the_inventorys_pg_bin_is_used_and_a_mismatch_shown(
    project: Project, tmp_path: Path
) -> None:
    fake_programs(project.root / "tools" / "bin", "99.1")
    project.write(
        "inventory.yaml",
        f"targets:\n  db: {{dsn: {project.dsn!r}, pg_bin: tools/bin}}\ndefault_target: db\n",
    )
    project.playbook(
        "name: b\nkind: change\nsteps:\n  - name: V\n    shell: [pg_dump, --version]\n"
    )
    result = project.run("run", "playbooks/p.yaml")
    assert result.exit_code == 0, result.output
    assert "| pg_dump (PostgreSQL) 99.1" in result.output
    assert "warning: set by pg_bin: using 99.1 (newer than the server's" in result.output
    record = project.last_run()["steps"][0]["result"]["client"]
    assert record["source"] == "pg_bin" and json.dumps(record)


def test_an_empty_pg_bin_is_invalid_input(project: Project) -> None:
    project.write(
        "inventory.yaml",
        f"targets:\n  db: {{dsn: {project.dsn!r}, pg_bin: ''}}\ndefault_target: db\n",
    )
    project.playbook(
        "name: b\nkind: change\nsteps:\n  - name: V\n    shell: [pg_dump, --version]\n"
    )
    result = project.run("run", "playbooks/p.yaml")
    assert result.exit_code == 2, result.output
    assert "inventory.yaml:2:" in result.output and "pg_bin" in result.output
