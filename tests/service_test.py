"""The run service: a RunSpec is plain data, and two runs on two threads at
once, sharing one journal, each get their own outcome and nothing is lost."""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path

import psycopg
import pytest

from runbook import report, service
from runbook.errors import UsageError
from runbook.outcome import RunOutcome

from .conftest import Project


def test_a_run_spec_is_plain_data_and_comes_back_the_same() -> None:
    spec = service.RunSpec(
        playbook=Path("playbooks/p.yaml"),
        inventory=Path("inventory.yaml"),
        targets=("a", "b"),
        extra=("n=1", '{"x": [1, 2]}'),
        tags=frozenset({"daily", "quick"}),
        check=True,
        mode="resume",
        continues="abc123",
    )
    text = json.dumps(spec.to_dict())
    assert service.RunSpec.from_dict(json.loads(text)) == spec
    with pytest.raises(UsageError, match="unknown field"):
        service.RunSpec.from_dict({"playbook": "p.yaml", "resume": {}})


def test_two_playbooks_on_two_threads_against_one_journal(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(project.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE hits (who text, n int)")
    for name in ("a", "b"):
        steps = "".join(
            f"  - name: {name} {i}\n    sql: INSERT INTO hits VALUES ('{name}', {i})\n"
            f"  - name: {name} check {i}\n    query: SELECT count(*) AS n FROM hits WHERE who = '{name}'\n"
            f"    register: c{i}\n    gate: {{that: c{i}.scalar == {i + 1}}}\n"
            for i in range(25)
        )
        project.playbook(f"name: {name}\nkind: change\nsteps:\n{steps}", f"{name}.yaml")
    monkeypatch.chdir(project.root)
    outcomes: dict[str, list[RunOutcome]] = {}
    outputs: dict[str, io.StringIO] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        outputs[name] = io.StringIO()
        try:
            outcomes[name] = service.run(
                service.RunSpec(playbook=project.root / "playbooks" / f"{name}.yaml"),
                lambda: report.PlainReporter(outputs[name]),
            )
        except BaseException as exc:  # shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    for name in ("a", "b"):
        (outcome,) = outcomes[name]
        assert outcome.exit_code == 0, outputs[name].getvalue()
        assert f"run {outcome.run_id}: {name} (change)" in outputs[name].getvalue()
        other = "b" if name == "a" else "a"
        assert f"{other} 0" not in outputs[name].getvalue()
    runs = {r["id"]: r for r in project.runs()}
    assert {runs[o.run_id]["playbook"] for (o,) in outcomes.values()} == {"a", "b"}
    for (outcome,) in outcomes.values():
        steps = runs[outcome.run_id]["steps"]
        assert len(steps) == 50 and all(s["status"] == "ok" for s in steps)
    with psycopg.connect(project.dsn) as conn:
        assert conn.execute(
            "SELECT who, count(*) FROM hits GROUP BY who ORDER BY who"
        ).fetchall() == [
            ("a", 25),
            ("b", 25),
        ]
    assert os.getcwd() == str(project.root)
