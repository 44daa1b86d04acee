"""The loader builds steps and gates that hold exactly their fields, and equal
the object the constructor makes from the same values."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from runbook.load import loader
from runbook.model import Gate, Step

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = sorted(ROOT.glob("playbooks/**/*.yaml"))

EVERY_KEY = """\
name: every-key
kind: change
steps:
  - name: all the common keys
    id: first
    sql: UPDATE t SET n = {{ n }}
    when: [n > 0, "true"]
    register: r
    tags: [a, b]
    timeout: 5m
    retries: 2
    delay: 500ms
    backoff: 2
    until: r.rowcount > 0
    on_failure: continue
    vars: {n: 1, token: {from_env: TOKEN, default: x, secret: true}}
    gate:
      - {that: r.rowcount == 1, severity: WARNING, message: one row, name: one, on_failure: halt}
      - that: [r.rowcount < 2]
    rollback:
      - name: undo
        sql: UPDATE t SET n = 0
  - name: a block
    transaction:
      - name: inside
        query: SELECT 1 AS one
  - name: a gate of its own
    gate: {that: r.rowcount >= 0}
"""


def _check(step: Step) -> None:
    names = {f.name for f in dataclasses.fields(Step)}
    assert set(vars(step)) == names, f"{step.name}: fields differ"
    assert step == Step(**{name: getattr(step, name) for name in names})
    for gate in step.gates:
        gate_names = {f.name for f in dataclasses.fields(Gate)}
        assert set(vars(gate)) == gate_names
        assert gate == Gate(**{name: getattr(gate, name) for name in gate_names})
    for inner in (*step.children, *step.rollback):
        _check(inner)


def test_every_key_of_a_step_is_built_as_the_constructor_would(tmp_path: Path) -> None:
    path = tmp_path / "every.yaml"
    path.write_text(EVERY_KEY)
    playbook, problems = loader.load_playbook(path)
    assert problems == [] and playbook is not None
    first = playbook.steps[0]
    assert first.timeout == 300.0 and first.delay == 0.5 and first.backoff == 2.0
    assert first.when == ("n > 0", "true") and first.until == ("r.rowcount > 0",)
    assert [g.name for g in first.gates] == ["one", None]
    assert first.gates[1].severity == "CRITICAL"  # the default
    assert len(first.rollback) == 1 and len(playbook.steps[1].children) == 1
    for step in playbook.steps:
        _check(step)


def test_a_built_step_stays_frozen(tmp_path: Path) -> None:
    path = tmp_path / "every.yaml"
    path.write_text(EVERY_KEY)
    playbook, _ = loader.load_playbook(path)
    assert playbook is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        playbook.steps[0].name = "changed"  # type: ignore[misc]


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: str(p.relative_to(ROOT)))
def test_bundled_steps_are_built_as_the_constructor_would(path: Path) -> None:
    playbook, problems = loader.load_playbook(path)
    if playbook is None:
        pytest.skip(f"not a playbook: {problems[0].message if problems else ''}")
    for step in playbook.steps:
        _check(step)
