"""The bad-input corpus: every malformed file in tests/bad_input/ is refused by the
real CLI with exit 2, no traceback, and exactly these problems at these places.

Playbooks there are checked against tests/bad_input/inventory.yaml (valid);
files named *.inventory.yaml are inventories.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from runbook.cli import main

CORPUS = Path(__file__).parent / "bad_input"

EXPECTED: dict[str, list[str]] = {
    "alias-bomb.yaml": [
        "9:1: 'i' expands through aliases to about 435,848,050 values, more than the 200,000 allowed (an alias bomb?); refusing the file",
    ],
    "autocommit-in-transaction.yaml": [
        "8:9: $.steps[0].transaction[0].autocommit: a step with autocommit: true cannot be inside a transaction block; move it out",
    ],
    "bad-cron.yaml": [
        "3:11: $.schedule: invalid cron expression '0 25 * * *': bad hour",
    ],
    "bad-duration.yaml": [
        "6:14: $.steps[0].timeout: '5 minutes' is not valid; expected a duration: a number of seconds, or a string such as 500ms, 30s, 5m, 1h, 2h30m, 1d; at most 7 days (604800 seconds).",
    ],
    "bad-group.inventory.yaml": [
        "4:10: $.groups.g[1]: unknown target 'b'",
    ],
    "bad-kind.yaml": [
        "2:7: $.kind: 'readonly' is not one of: check, change, emergency, recovery, drill",
    ],
    "bad-on-failure.yaml": [
        "6:17: $.steps[0].on_failure: 'rollbak' is not one of: halt, continue, rollback (did you mean 'rollback'?)",
    ],
    "bad-targets-from.inventory.yaml": [
        "4:30: $.groups.no-pattern.targets_from: missing required key 'databases'",
        "5:24: $.groups.both.targets_from: give only one of 'cluster', 'file', not 'cluster' and 'file'",
        "6:27: $.groups.neither.targets_from: expected one of: cluster, file",
    ],
    "bad-target-key.inventory.yaml": [
        "2:6: $.targets.a: missing required key 'dsn'",
        "2:7: $.targets.a.dns: unknown key 'dns' (did you mean 'dsn'?)",
    ],
    "braces-in-expression.yaml": [
        "8:11: $.steps[1].when: Jinja syntax error: expected token ':', got '}' (expressions take no {{ }})",
    ],
    "channel-missing-url.inventory.yaml": [
        "4:9: $.channels.hook: missing required key 'url'",
    ],
    "cron-six-fields.yaml": [
        "3:18: $.schedule.cron: cron expression needs 5 fields (minute hour day month weekday), got 6",
    ],
    "duplicate-key.yaml": [
        "6:5: duplicate key 'query' (first defined at line 5, column 5); YAML would silently keep only the last one",
    ],
    "duplicate-step-id.yaml": [
        "7:5: $.steps[1].id: duplicate step id 'count' (already used at line 4); ids must be unique",
    ],
    "empty-steps.yaml": [
        "3:8: $.steps: the list is empty; it needs at least 1 item(s)",
    ],
    "empty.yaml": [
        "1:1: file is empty: expected a mapping",
    ],
    "include-missing.yaml": [
        "5:14: $.steps[0].include: included playbook 'other.yaml' does not exist",
    ],
    "jinja-syntax-in-block.yaml": [
        "8:7: $.steps[0].query: Jinja syntax error: unexpected 'end of print statement'",
    ],
    "list-document.yaml": [
        "1:1: the document must be a mapping (key: value), not a list",
    ],
    "misspelt-key.yaml": [
        "6:5: $.steps[0].regster: unknown key 'regster' (did you mean 'register'?)",
    ],
    "not-utf8.yaml": [
        "4:14: file is not valid UTF-8 (byte 0xe9); save it as UTF-8",
    ],
    "policy-unknown-channel.inventory.yaml": [
        "9:38: $.policies.p.severities.CRITICAL.levels[0].notify[0]: unknown channel 'pager'",
    ],
    "python-tag.yaml": [
        "1:7: unsupported YAML tag '!!python/object/apply:os.system'; runbook reads plain data only",
    ],
    "register-used-before-defined.yaml": [
        "5:12: $.steps[0].query: 'later' is used before step 'Define it' (line 6) defines it",
    ],
    "rollback-on-read.yaml": [
        "6:5: $.steps[0].rollback: a query step cannot change anything, so it has nothing to roll back (a query that writes says `writes: true`)",
    ],
    "shell-argv-and-command.yaml": [
        "5:12: $.steps[0].shell: give only one of 'argv', 'command', not 'argv' and 'command'",
    ],
    "sql-file-missing.yaml": [
        "5:15: $.steps[0].sql_file: sql_file 'nothere.sql' does not exist in the project's sql/ folder",
    ],
    "sql-file-outside.yaml": [
        "5:15: $.steps[0].sql_file: sql_file '../../etc/passwd' points outside the project's sql/ folder",
    ],
    "step-with-two-actions.yaml": [
        "4:5: $.steps[0]: a step does one thing, but this one has 'query' and 'sql'; split it into two steps",
    ],
    "step-without-action.yaml": [
        "4:5: $.steps[0]: the step has no action: add one of query, sql, sql_file, gate, assert, classify, set, include, shell, http, confirm, wait, notify, escalate, transaction",
    ],
    "step-without-name.yaml": [
        "4:5: $.steps[0]: missing required key 'name'",
    ],
    "tab-indent.yaml": [
        "5:1: tab character used for indentation; YAML allows only spaces",
    ],
    "templated-name.yaml": [
        "5:11: $.steps[0].name: step names are not templated (they identify the step before any value exists); put the value in a gate message or in the step's SQL instead",
    ],
    "undefined-variable.yaml": [
        "6:12: $.steps[0].query: 'lookbak' is undefined: not a variable of the playbook or its targets, and no step registers it (did you mean 'lookback'?)",
    ],
    "unknown-channel.yaml": [
        "5:25: $.steps[0].notify.channels[0]: unknown channel 'opps' (did you mean 'ops'?)",
    ],
    "unknown-jinja-test.yaml": [
        "8:13: $.steps[0].gate.that: unknown Jinja test 'search'",
        "10:17: $.steps[1].set.loud: unknown Jinja filter 'uper' (did you mean 'upper'?)",
    ],
    "unknown-policy.yaml": [
        "3:13: $.escalation: unknown escalation policy 'on-call' (did you mean 'oncall'?)",
    ],
    "unknown-severity.yaml": [
        "6:48: $.steps[0].gate.severity: unknown severity 'SEVERE'; the scale is HEALTHY, OK, INFO, LOW, ATTENTION, MEDIUM, WARNING, HIGH, CRITICAL",
    ],
    "unknown-target.yaml": [
        "3:10: $.targets: unknown target or group 'prodution' (did you mean 'production'?)",
    ],
    "unknown-top-level-key.yaml": [
        "1:1: $: missing required key 'steps'",
        "3:1: $.stepz: unknown key 'stepz' (did you mean 'steps'?)",
    ],
    "vacuum-without-autocommit.yaml": [
        "5:10: $.steps[0].sql: `VACUUM ANALYZE panels` cannot run inside a transaction; mark the step `autocommit: true`",
    ],
    "value-inside-quotes.yaml": [
        "6:12: $.steps[0].query: a {{ value }} inside a quoted string cannot be a bound parameter; put it outside the quotes ('%' || {{ x }} || '%')",
    ],
    "write-in-check.yaml": [
        "4:5: $.steps[0]: playbook is kind: check (read-only) but this sql step may write; set `writes: false` if it only reads, or make the playbook kind: change",
    ],
    "wrong-type.yaml": [
        "6:14: $.steps[0].retries: expected an integer, got the string 'three'",
    ],
    "yaml-syntax-error.yaml": [
        "6:9: YAML syntax error: while parsing a flow sequence, did not find expected ',' or ']' (started at line 5, column 12)",
    ],
}


def test_corpus_is_large_and_complete() -> None:
    files = {p.name for p in CORPUS.glob("*.yaml")} - {"inventory.yaml"}
    assert files == set(EXPECTED)
    assert len(EXPECTED) >= 30
    assert all(EXPECTED.values())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_input_is_refused_at_its_place(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)
    monkeypatch.delenv("RUNBOOK_INVENTORY", raising=False)
    result = CliRunner().invoke(main, ["validate", name])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stdout.splitlines() == [f"{name}:{line}" for line in EXPECTED[name]]


def test_whole_corpus_in_one_run_reports_every_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)
    result = CliRunner().invoke(main, ["validate", "."])
    assert result.exit_code == 2
    files = {line.split(":", 1)[0] for line in result.stdout.splitlines()}
    assert files == set(EXPECTED)
    assert os.path.exists(CORPUS / "inventory.yaml")
