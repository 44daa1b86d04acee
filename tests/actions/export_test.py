"""`export:` on a query step writes every row to a file of the project
(issue 15, item 15)."""

from __future__ import annotations

import csv
import hashlib
import json

import pytest

from tests.conftest import Project

BOOK = """name: audit
kind: check
steps:
  - name: Rows
    query: |
      SELECT g AS n, 'row ' || g AS label, jsonb_build_object('k', g) AS j
      FROM generate_series(1, {n}) g
    register: r
    export:
      path: "{path}"
{fmt}"""


def _book(project: Project, n: int, path: str, fmt: str = "") -> str:
    line = f"      format: {fmt}\n" if fmt else ""
    return str(project.playbook(BOOK.format(n=n, path=path, fmt=line)))


def test_every_row_is_written_not_the_sample(project: Project) -> None:
    book = _book(project, 25_000, "reports/audit-{{ run.date }}.csv")
    result = project.run("run", book)
    assert result.exit_code == 0, result.output
    [path] = (project.root / "reports").glob("audit-*.csv")
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["n", "label", "j"] and len(rows) == 25_001
    assert rows[-1] == ["25000", "row 25000", '{"k": 25000}']
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert f"exported 25000 row(s) to reports/{path.name} (sha256 {digest[:12]}…)" in result.stdout
    step = project.last_run()["steps"][0]
    assert step["result"]["export"]["sha256"] == digest
    assert step["result"]["export"]["rows"] == 25_000
    assert len(step["result"]["rows"]) <= 20  # the journal keeps its sample


@pytest.mark.parametrize("fmt", ["json", "jsonl", "markdown"])
def test_formats(project: Project, fmt: str) -> None:
    suffix = {"json": "json", "jsonl": "jsonl", "markdown": "md"}[fmt]
    assert project.run("run", _book(project, 3, f"out.{suffix}")).exit_code == 0
    text = (project.root / f"out.{suffix}").read_text()
    if fmt == "json":
        assert json.loads(text)[2] == {"n": 3, "label": "row 3", "j": {"k": 3}}
    elif fmt == "jsonl":
        assert [json.loads(line)["n"] for line in text.splitlines()] == [1, 2, 3]
    else:
        assert text.splitlines()[:3] == [
            "| n | label | j |",
            "|---|---|---|",
            '| 1 | row 1 | {"k": 1} |',
        ]


def test_no_rows_writes_an_empty_report(project: Project) -> None:
    result = project.run("run", _book(project, 0, "empty.csv"))
    assert result.exit_code == 0 and "exported 0 row(s)" in result.stdout
    assert (project.root / "empty.csv").read_text() == ""
    assert project.run("run", _book(project, 0, "empty.json")).exit_code == 0
    assert json.loads((project.root / "empty.json").read_text()) == []


@pytest.mark.parametrize("path", ["../outside.csv", "/tmp/elsewhere.csv"])
def test_a_path_outside_the_project_is_refused(project: Project, path: str) -> None:
    result = project.run("run", _book(project, 3, path))
    assert result.exit_code == 3 and "leads outside the project" in result.stdout


def test_a_failing_query_leaves_no_half_file(project: Project) -> None:
    book = project.playbook(
        "name: a\nkind: check\nsteps:\n  - name: R\n"
        "    query: SELECT 1/(g - 500) FROM generate_series(1, 1000) g\n"
        "    export: {path: half.csv}\n"
    )
    result = project.run("run", str(book))
    assert result.exit_code == 3, result.output
    assert not (project.root / "half.csv").exists()
    assert list(project.root.glob(".half.csv.*")) == []


def test_check_and_rehearse_write_no_file(project: Project) -> None:
    book = _book(project, 3, "dry.csv")
    for flag in ("--check", "--rehearse"):
        result = project.run("run", book, flag)
        assert result.exit_code == 0 and "export not written" in result.stdout
    assert not (project.root / "dry.csv").exists()
