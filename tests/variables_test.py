"""-e values: names runbook does not give itself, bounded depth, no NUL, finite
numbers; refused with exit 2 before anything runs, never with a traceback."""

from __future__ import annotations

import json

import psycopg
import pytest

from .conftest import Project

PLAYBOOK = """name: e
kind: change
vars: {x: null}
steps:
  - name: Delete
    sql: DELETE FROM nt WHERE id = 2
  - name: Show
    query: SELECT {{ x | tojson }}::text AS x
"""

DEEP = '{"x": ' + "[" * 2000 + "]" * 2000 + "}"


def table(project: Project) -> None:
    with psycopg.connect(project.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS nt")
        conn.execute("CREATE TABLE nt (id int)")
        conn.execute("INSERT INTO nt SELECT generate_series(1, 3)")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (DEEP, "nested deeper than 64 levels"),
        ('{"x": ' + "[" * 70 + "]" * 70 + "}", "nested deeper than 64 levels"),
        ('{"x": {"a": ' * 65 + "1" + "}" * 130, "nested deeper than 64 levels"),
        ('{"x": "a\\u0000b"}', "NUL character in a value"),
        ('{"x": NaN}', "NaN is not a number runbook accepts"),
        ('{"x": 1e400}', "inf is not a number runbook accepts"),
        ('{"x": 1, "run": {"id": "forged"}}', "'run' is a built-in of every step"),
        ("run=forged", "'run' is a built-in of every step"),
        ("result=1", "'result' is a built-in of every step"),
        ("range=1", "'range' is reserved by the template language"),
        ("loop=1", "'loop' is reserved by the template language"),
        ("__runbook_binds__=1", "names starting with '__' are reserved"),
        ("x\u0430=1", "'x\\u0430' is not a variable name"),
    ],
    ids=lambda v: v[:30],
)
def test_bad_extra_values_are_refused_before_anything_runs(
    project: Project, extra: str, message: str
) -> None:
    table(project)
    playbook = project.playbook(PLAYBOOK, "e.yaml")
    result = project.run("run", str(playbook), "-e", "x=1", "-e", extra)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert message in result.output
    assert "forged" not in result.output
    with psycopg.connect(project.dsn) as conn:
        assert [r[0] for r in conn.execute("SELECT id FROM nt ORDER BY id")] == [1, 2, 3]


def test_an_extra_file_is_bounded_the_same_way(project: Project) -> None:
    table(project)
    deep = {"x": 1, "y": json.loads("[" * 80 + "]" * 80)}
    project.write("deep.json", json.dumps(deep))
    result = project.run("run", str(project.playbook(PLAYBOOK, "e.yaml")), "-e", "@deep.json")
    assert result.exit_code == 2, result.output
    assert "nested deeper than 64 levels" in result.output


def test_a_value_within_the_bounds_is_used(project: Project) -> None:
    table(project)
    value = json.dumps({"x": json.loads("[" * 60 + "1" + "]" * 60)})
    result = project.run("run", str(project.playbook(PLAYBOOK, "e.yaml")), "-e", value)
    assert result.exit_code == 0, result.output
