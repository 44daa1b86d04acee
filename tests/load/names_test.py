"""Reserved names are refused where they are written; look-alike keys and
names are shown escaped and called look-alikes."""

from __future__ import annotations

import psycopg
import pytest

from runbook.load import names

from ..conftest import Project

BASE = """name: r
kind: change
{top}steps:
  - name: Delete
    sql: DELETE FROM nt WHERE id = 2
  - name: Named
{step}
"""


def table(project: Project) -> None:
    with psycopg.connect(project.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS nt")
        conn.execute("CREATE TABLE nt (id int)")
        conn.execute("INSERT INTO nt SELECT generate_series(1, 3)")


CASES = [
    (
        "",
        "    query: SELECT 1\n    register: run",
        "8:15: $.steps[1].register: 'run' is a built-in",
    ),
    ("", "    query: SELECT 1\n    register: result", "8:15: $.steps[1].register: 'result'"),
    ("", "    query: SELECT 1\n    register: target", "8:15: $.steps[1].register: 'target'"),
    ("", "    query: SELECT 1\n    register: now", "8:15: $.steps[1].register: 'now'"),
    (
        "",
        "    query: SELECT 1\n    register: loop",
        "8:15: $.steps[1].register: 'loop' is reserved",
    ),
    ("", "    query: SELECT 1\n    register: namespace", "8:15: $.steps[1].register: 'namespace'"),
    ("", "    set: {playbook: 1}", "7:11: $.steps[1].set.playbook: 'playbook' is a built-in"),
    ("", "    set: {range: 1}", "7:11: $.steps[1].set.range: 'range' is reserved"),
    ("", "    set: {__x: 1}", "7:11: $.steps[1].set.__x: '__x': names starting with '__'"),
    (
        "",
        "    query: SELECT 1\n    vars: {dict: 1}",
        "8:12: $.steps[1].vars.dict: 'dict' is reserved",
    ),
    ("vars: {run: 1}\n", "    query: SELECT 1", "3:8: $.vars.run: 'run' is a built-in"),
    ("vars: {None: 1}\n", "    query: SELECT 1", "3:8: $.vars.None: 'None' is reserved"),
]


@pytest.mark.parametrize(("top", "step", "expected"), CASES, ids=[c[2][:40] for c in CASES])
def test_reserved_names_are_refused_where_written(
    project: Project, top: str, step: str, expected: str
) -> None:
    table(project)
    playbook = project.playbook(BASE.format(top=top, step=step), "r.yaml")
    for command in ("validate", "run"):
        result = project.run(command, str(playbook))
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert f"playbooks/r.yaml:{expected}" in result.output
    with psycopg.connect(project.dsn) as conn:
        assert [r[0] for r in conn.execute("SELECT id FROM nt ORDER BY id")] == [1, 2, 3]


def test_every_name_the_engine_and_jinja_give_is_reserved() -> None:
    from runbook.sqltemplate import template

    for name in ("run", "result", "target", "playbook", "now", *template.BUILTIN_NAMES, "loop"):
        assert names.reserved_why(name), name
    for name in ("count", "before", "after", "status", "value", "rows"):
        assert names.reserved_why(name) is None, name


LOOKALIKE = """name: l
kind: change
steps:
  - n\u0430me: Cyrillic a
    sql: DELETE FROM nt
  - name: Greek o
    sql: DELETE FROM nt
    \u03bfn_failure: halt
  - name: Enum value
    sql: DELETE FROM nt
    on_failure: h\u0430lt
"""


def test_look_alike_keys_are_shown_escaped_and_named(project: Project) -> None:
    table(project)
    playbook = project.playbook(LOOKALIKE, "l.yaml")
    for command in ("validate", "run"):
        result = project.run(command, str(playbook))
        assert result.exit_code == 2, result.output
        out = result.output
        assert "\u0430" not in out and "\u03bf" not in out, out
        assert (
            "l.yaml:4:5: $.steps[0]['n\\u0430me']: unknown key 'n\\u0430me' "
            "(a look-alike of 'name': it holds non-ASCII characters" in out
        )
        assert (
            "l.yaml:8:5: $.steps[1]['\\u03bfn_failure']: unknown key '\\u03bfn_failure' (a look-alike of 'on_failure'"
            in out
        )
        assert (
            "l.yaml:11:17: $.steps[2].on_failure: 'h\\u0430lt' is not one of: halt, continue, rollback (a look-alike of 'halt'"
            in out
        )
    with psycopg.connect(project.dsn) as conn:
        assert [r[0] for r in conn.execute("SELECT id FROM nt ORDER BY id")] == [1, 2, 3]


def test_shown_escapes_anything_but_printable_ascii() -> None:
    assert names.shown("name") == "'name'"
    assert names.shown("n\u0430me") == "'n\\u0430me'"
    assert names.shown("a\u200bb") == "'a\\u200bb'"  # zero-width space
    assert names.shown("tab\there") == "'tab\\there'"
    assert names.lookalike("n\u0430me", ["name"]) == "name"
    assert names.lookalike("\uff4e\uff41\uff4d\uff45", ["name"]) == "name"  # full-width
    assert names.lookalike("name", ["name"]) is None
