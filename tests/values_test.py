"""Values as PostgreSQL writes them, and exactly the same after the journal
(issue 15, items 9 and 11)."""

from __future__ import annotations

import json

from runbook import tables
from tests.conftest import Project

TYPES = """name: typed
kind: change
vars:
  divisor: 0
steps:
  - name: Take
    query: |
      SELECT '\\x00ff10'::bytea AS b, 12.50::numeric AS n,
             interval '1 day 2 hours 3.5 seconds' AS i,
             '2026-01-02 03:04:05.123456+02'::timestamptz AS t, date '2026-01-02' AS d,
             time '04:05:06.5' AS tm,
             'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, ARRAY[1, 2, 3] AS a,
             ARRAY[1.5, 2.25]::numeric[] AS na, '10.0.0.1/24'::inet AS ip,
             '{"a": null, "$pg": "not a tag"}'::jsonb AS j, 'NaN'::float8 AS nan
    register: r
  - name: Maybe fail
    sql: SELECT 1 / {{ divisor }}
  - name: Same again
    query: |
      SELECT {{ r.first.b }} = '\\x00ff10'::bytea AND {{ r.first.n }} = 12.50::numeric
         AND {{ r.first.n }}::text = '12.50'
         AND {{ r.first.i }} = interval '1 day 2 hours 3.5 seconds'
         AND {{ r.first.t }} = '2026-01-02 03:04:05.123456+02'::timestamptz
         AND {{ r.first.d }} = date '2026-01-02' AND {{ r.first.tm }} = time '04:05:06.5'
         AND {{ r.first.u }} = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid
         AND {{ r.first.a }}::int[] = ARRAY[1, 2, 3] AND {{ r.first.na }} = ARRAY[1.5, 2.25]::numeric[]
         AND {{ r.first.ip }} = '10.0.0.1/24'::inet AND {{ r.first.nan }} = 'NaN'::float8 AS same
    register: s
    gate:
      that:
        - s.scalar
        - 'r.first.j == {"a": none, "$pg": "not a tag"}'
"""


def test_registered_values_come_back_from_the_journal_with_their_types(project: Project) -> None:
    book = project.playbook(TYPES)
    first = project.run("run", str(book), "-e", "divisor=0")
    assert first.exit_code == 3, first.output
    run_id = project.last_run()["id"]
    # The resume restores `r` from the journal, and binds it again.
    again = project.run("resume", run_id, "-e", "divisor=1")
    assert again.exit_code == 0, again.output
    same = project.last_run()["steps"]
    assert [s["status"] for s in same if s["name"] == "Same again"] == ["ok"]


SHOWN = """name: shown
kind: check
steps:
  - name: Look
    query: |
      SELECT * FROM (VALUES
        (1, 1.5::numeric, '{"a": null}'::jsonb, interval '1 day 2 hours', '\\x00ff'::bytea, true),
        (2, 2::numeric, '[1, "x"]'::jsonb, interval '-2 hours', '\\x'::bytea, false)
      ) AS t(k, n, j, i, b, f)
"""


def test_values_are_shown_as_postgresql_writes_them(project: Project) -> None:
    book = project.playbook(SHOWN)
    plain = project.run("run", str(book))
    assert plain.exit_code == 0, plain.output
    rows = [line.split() for line in plain.stdout.splitlines() if line.startswith("       ")]
    assert rows[0] == ["k", "n", "j", "i", "b", "f"]
    assert plain.stdout.count('{"a": null}') == 1 and "{'a': None}" not in plain.stdout
    assert "1 day 02:00:00" in plain.stdout and "-02:00:00" in plain.stdout
    assert "\\x00ff" in plain.stdout and "base64" not in plain.stdout
    document = json.loads(project.run("run", str(book), "--format", "json").stdout)
    result = document["runs"][0]["steps"][0]["result"]
    assert [r["n"] for r in result["rows"]] == ["1.5", "2"]  # one JSON type per column
    assert [r["i"] for r in result["rows"]] == ["1 day 02:00:00", "-02:00:00"]
    assert result["rows"][0]["j"] == {"a": None} and result["rows"][1]["j"] == [1, "x"]
    assert result["rows"][0]["b"] == "\\x00ff"


WIDE = """name: wide
kind: check
steps:
  - name: Wide
    query: SELECT {columns}
"""


def test_columns_beyond_the_table_are_counted_and_expanded_shows_them(project: Project) -> None:
    columns = ", ".join(f"{i} AS c{i}" for i in range(1, 13))
    book = project.playbook(WIDE.format(columns=columns))
    plain = project.run("run", str(book))
    assert "(+4 column(s): c9, c10, c11, c12 (--expanded shows them))" in plain.stdout
    expanded = project.run("run", str(book), "--expanded")
    assert "-[ RECORD 1 ]" in expanded.stdout
    assert "c12 | 12" in expanded.stdout and "+4 column" not in expanded.stdout


def test_wide_characters_keep_columns_aligned(project: Project) -> None:
    book = project.playbook(
        WIDE.format(columns="* FROM (VALUES ('🟢 OK', 1), ('plain', 2)) AS t(state, n)")
    )
    result = project.run("run", str(book))
    table = [line for line in result.stdout.splitlines() if line.startswith("       ")]
    positions = {tables.width(line[: line.rindex(" ") + 1]) for line in table}
    assert len(positions) == 1, table  # the second column starts at one screen column


def test_a_terminal_too_narrow_gets_the_expanded_view() -> None:
    table = tables.Table(["name", "definition"], [["a", "x" * 40]], 1)
    assert tables.lines_for(table, False, 200) == tables.aligned_lines(table)
    assert tables.lines_for(table, False, 30) == tables.expanded_lines(table)
