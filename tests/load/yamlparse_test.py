"""No string read from a file may hold NUL: written as an escape it is refused
at its place, in every field (SQL, paths, argv, URLs, keys, inventory values)."""

from __future__ import annotations

import psycopg
import pytest

from ..conftest import Project


def table(project: Project) -> None:
    with psycopg.connect(project.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS nt")
        conn.execute("CREATE TABLE nt (id int)")
        conn.execute("INSERT INTO nt SELECT generate_series(1, 9)")


HEAD = "name: n\nkind: change\nsteps:\n  - name: First\n    sql: DELETE FROM nt WHERE id = 1\n"
CASES = {
    "inline sql": ('  - name: x\n    sql: "DELETE FROM nt WHERE id = 5\\0 AND false"\n', "7:10"),
    "sql as \\x00": (
        '  - name: x\n    sql: "DELETE FROM nt WHERE id = 5\\x00 AND false"\n',
        "7:10",
    ),
    "sql as \\u0000": (
        '  - name: x\n    sql: "DELETE FROM nt WHERE id = 5\\u0000 AND false"\n',
        "7:10",
    ),
    "query": ('  - name: x\n    query: "SELECT 1\\0"\n', "7:12"),
    "sql_file": ('  - name: x\n    sql_file: "ok.sql\\0"\n', "7:15"),
    "include": ('  - name: x\n    include: "x\\0"\n', "7:14"),
    "shell argv": ('  - name: x\n    shell: [rm, "-f\\0"]\n', "7:17"),
    "shell command": ('  - name: x\n    shell: {command: "echo\\0"}\n', "7:22"),
    "shell cwd": ('  - name: x\n    shell: {argv: [true], cwd: "a\\0"}\n', "7:32"),
    "http url": ('  - name: x\n    http: {url: "http://127.0.0.1:1/\\0x"}\n', "7:17"),
    "step name": ('  - name: "x\\0"\n    query: SELECT 1\n', "6:11"),
    "a key": ('  - name: x\n    query: SELECT 1\n    vars: {"a\\0": 1}\n', "8:12"),
    "a var": ('  - name: x\n    query: SELECT {{ v }}\n    vars: {v: "a\\0"}\n', "8:15"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_nul_in_any_string_is_refused_at_its_place(project: Project, case: str) -> None:
    table(project)
    text, where = CASES[case]
    project.write("sql/ok.sql", "SELECT 1\n")
    playbook = project.playbook(HEAD + text, "n.yaml")
    for command in ("validate", "run"):
        result = project.run(command, str(playbook))
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert f"playbooks/n.yaml:{where}: NUL character (written as an escape)" in result.output
    with psycopg.connect(project.dsn) as conn:
        assert len(conn.execute("SELECT id FROM nt").fetchall()) == 9


def test_nul_in_an_inventory_value_is_refused(project: Project) -> None:
    inventory = project.root / "inventory.yaml"
    inventory.write_text(inventory.read_text().replace("notifications.jsonl", 'n.jsonl\\0"'))
    inventory.write_text(inventory.read_text().replace("path: n.jsonl", 'path: "n.jsonl'))
    playbook = project.playbook(HEAD, "n.yaml")
    result = project.run("run", str(playbook))
    assert result.exit_code == 2, result.output
    assert "inventory.yaml:6:" in result.output and "NUL character" in result.output
