"""Every number of a playbook is finite and within its documented bounds:
`.inf`, `.nan`, `1e400`, negative and huge values in every numeric field of the
schema are refused by `validate` and by `run` at their line and column, or (where
the schema allows them) run without a traceback."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest

from runbook.load import flatschema, schema

from ..conftest import Project

MINIMAL: dict[str, dict[str, Any]] = {
    "query": {"query": "SELECT 1"},
    "sql": {"sql": "SELECT 1"},
    "sql_file": {"sql_file": "one.sql"},
    "gate": {"gate": {"that": "true"}},
    "assert": {"assert": {"that": "true"}},
    "classify": {"classify": {"value": "1", "thresholds": [{"severity": "LOW", "above": 0}]}},
    "set": {"set": {"v": 1}},
    "include": {"include": "part.yaml"},
    "shell": {"shell": {"argv": ["true"]}},
    "http": {"http": {"url": "http://127.0.0.1:9/"}},
    "confirm": {"confirm": "go?"},
    "wait": {"wait": {"for": 0}},
    "notify": {"notify": {"channels": ["log"], "message": "hi"}},
    "escalate": {"escalate": {"severity": "LOW", "message": "hi"}},
    "transaction": {"transaction": [{"name": "t", "sql": "SELECT 1"}]},
}
COMMON = set(schema.load(schema.PLAYBOOK)["$defs"]["common"]["properties"]) | set(
    schema.load(schema.PLAYBOOK)["$defs"]["db_options"]["properties"]
)


def _types(node: dict[str, Any]) -> set[str]:
    kind = node.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


def numeric_fields(
    node: Any, path: tuple[Any, ...] = ()
) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """(path, schema) of every place a number may be written; `*` for any key."""
    if not isinstance(node, dict):
        return
    if _types(node) & {"number", "integer"}:
        yield path, node
    for key, sub in node.get("properties", {}).items():
        yield from numeric_fields(sub, (*path, key))
    if isinstance(node.get("additionalProperties"), dict):
        yield from numeric_fields(node["additionalProperties"], (*path, "*"))
    if isinstance(node.get("items"), dict):
        yield from numeric_fields(node["items"], (*path, 0))
    for branch in node.get("oneOf", []):
        yield from numeric_fields(branch, path)


def cases() -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    top, steps = flatschema.playbook_validators(schema.PLAYBOOK)
    found: dict[tuple[str, tuple[Any, ...]], dict[str, Any]] = {}
    for path, node in numeric_fields(top.schema):
        found.setdefault(("top", path), node)
    for kind, validator in steps.items():
        for path, node in numeric_fields(validator.schema):
            where = "query" if path[0] in COMMON and path[0] not in MINIMAL else kind
            if where == "query" and kind not in ("query", "sql"):
                continue  # a common key: checked once, on a query step
            found.setdefault((where, path), node)
    return [(kind, path, node) for (kind, path), node in sorted(found.items(), key=str)]


CASES = cases()
VALUES = [".inf", "-.inf", ".nan", "1e400", "-1", "1e10", "8d"]


def test_the_sweep_sees_every_numeric_field() -> None:
    names = {".".join(map(str, p)) for _, p, _ in CASES}
    for expected in (
        "timeout", "lock_timeout", "retries", "delay", "backoff", "max_rows",
        "wait.interval", "wait.for", "wait.timeout", "schedule.starting_deadline",
        "schedule.every", "schedule.jitter", "schedule.0.max_duration",
        "classify.thresholds.0.above", "http.ok_status.0", "shell.ok_status.0",
        "http.headers.*.default",
    ):  # fmt: skip
        assert expected in names, (expected, sorted(names))


def _put(data: Any, path: tuple[Any, ...], value: str) -> Any:
    """`data` with `value` (a placeholder) at `path`, creating what is missing."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if head == 0:
        items = list(data) if isinstance(data, list) and data else [{}]
        if not isinstance(items[0], dict) and rest:
            items = [{}]
        items[0] = _put(items[0] if rest else None, rest, value)
        return items
    data = dict(data) if isinstance(data, dict) else {}
    if head == "*":
        head = "X_HEADER"
        if not rest:
            return {**data, head: value}
        if not isinstance(data.get(head), dict):
            data[head] = {"from_env": "RUNBOOK_TEST_UNSET"}
    data[head] = _put(data.get(head), rest, value)
    return data


def playbook_text(kind: str, path: tuple[Any, ...], value: str) -> tuple[str, str]:
    """The playbook, and where the value stands in it (line:col)."""
    mark = "@@VALUE@@"
    if kind == "top":
        data: dict[str, Any] = {"steps": [{"name": "s", "query": "SELECT 1"}]}
        data = _put(data, path, mark)
        if path[0] == "schedule" and "every" not in path:
            # A schedule needs cron or every (one of them): the field under test is the other.
            entry = data["schedule"]
            (entry[0] if isinstance(entry, list) else entry)["cron"] = "0 8 * * *"
        head = "".join(f"{k}: {json.dumps(v)}\n" for k, v in data.items() if k != "steps")
        body = "steps:\n  - " + json.dumps(data["steps"][0]) + "\n"
    else:
        step = _put({"name": "s", **MINIMAL[kind]}, path, mark)
        if kind == "wait" and path[:2] in (("wait", "interval"), ("wait", "timeout")):
            step["wait"] = {"query": "SELECT 1", "until": True, **step["wait"]}
            step["wait"].pop("for", None)
        head, body = "", "steps:\n  - " + json.dumps(step) + "\n"
    text = f"name: n\nkind: change\n{head}{body}".replace(f'"{mark}"', value)
    index = text.index(value)
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return text, f"{line}:{col}"


def refused(node: dict[str, Any], value: str) -> bool:
    if value == "8d":
        return "maxSeconds" in node
    number = float(value.replace(".inf", "inf").replace(".nan", "nan"))
    if not math.isfinite(number):
        return True
    if "integer" in _types(node) and "number" not in _types(node) and not number.is_integer():
        return True
    return number < node.get("minimum", -math.inf) or number > node.get("maximum", math.inf)


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize(
    ("kind", "path", "node"), CASES, ids=[f"{k}:{'.'.join(map(str, p))}" for k, p, _ in CASES]
)
def test_every_numeric_field_is_finite_and_bounded(
    project: Project, kind: str, path: tuple[Any, ...], node: dict[str, Any], value: str
) -> None:
    if value == "8d" and "string" not in _types(node):
        pytest.skip("a duration string is only written where a duration is")
    project.write("sql/one.sql", "SELECT 1\n")
    project.playbook(
        "name: part\nkind: check\nsteps:\n  - {name: p, query: SELECT 1}\n", "part.yaml"
    )
    text, where = playbook_text(kind, path, value)
    playbook = project.playbook(text, "n.yaml")
    for command in ("validate", "run"):
        args = (
            (command, str(playbook)) if command == "validate" else (command, "--yes", str(playbook))
        )
        result = project.run(*args)
        assert "Traceback" not in result.output, result.output
        if refused(node, value):
            assert result.exit_code == 2, (text, result.output)
            assert f"playbooks/n.yaml:{where}: " in result.output, (text, result.output)
        else:
            assert result.exit_code != 2, (text, result.output)
    if refused(node, value):
        assert not (project.root / ".runbook" / "journal.sqlite").exists() or not project.runs()


def test_a_retry_schedule_that_overflows_is_refused(project: Project) -> None:
    playbook = project.playbook(
        "name: n\nkind: change\nsteps:\n  - name: s\n    sql: SELECT 1\n"
        "    retries: 1000\n    delay: 1\n    backoff: 10\n",
        "n.yaml",
    )
    for command in ("validate", "run"):
        result = project.run(command, str(playbook))
        assert result.exit_code == 2, result.output
        assert (
            "n.yaml:8:14: $.steps[0].backoff: with delay 1s, backoff 10 and 1000 retries"
            in result.output
        )
