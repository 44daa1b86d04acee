"""The document cache: a hit must be indistinguishable from parsing the file again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from runbook.cli import main
from runbook.load import doccache, loader
from runbook.load.yamlsrc import Document

PLAYBOOK = """name: cached
kind: check
vars: {limit: 5}
steps:
  - name: Count
    query: |
      SELECT count(*) AS n
      FROM pg_class
      LIMIT {{ limit }}
    register: c
    gate: {that: c.scalar > 0, severity: WARNING}
  - name: Quoted
    query: 'SELECT {{ limit }}'
  - name: Uses a name nobody defines
    when: missing_flag
    query: SELECT 1
"""


def read_twice(tmp_path: Path) -> tuple[Document, Document]:
    path = tmp_path / "p.yaml"
    path.write_text(PLAYBOOK)
    folder = tmp_path / "cache"
    first = loader.read(path, "playbook.schema.json", folder)
    second = loader.read(path, "playbook.schema.json", folder)
    assert first.doc is not None and second.doc is not None
    assert first.doc.pending is None, "the first read parses the file"
    assert second.doc.pending is not None, "the second read comes from the cache"
    return first.doc, second.doc


def test_a_hit_has_the_data_and_every_position_of_a_parse(tmp_path: Path) -> None:
    parsed, cached = read_twice(tmp_path)
    assert cached.data == parsed.data
    for path, where in parsed.values.items():
        assert cached.position(path) == where, path
    for path, where in parsed.keys.items():
        assert cached.position(path, key=True) == where, path
    for path, style in parsed.styles.items():
        assert cached.style(path) == style, path


def test_a_step_location_from_a_hit_is_looked_up_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "p.yaml"
    path.write_text(PLAYBOOK)
    folder = tmp_path / "cache"
    fresh, _ = loader.load_playbook(path, folder)
    cached, _ = loader.load_playbook(path, folder)
    assert fresh is not None and cached is not None
    assert cached.doc.pending is not None
    assert [str(s.loc) for s in cached.steps] == [str(s.loc) for s in fresh.steps]
    assert [str(s.loc) for s in cached.steps] == [f"p.yaml:{n}:5" for n in (5, 12, 14)]
    assert cached.doc.pending is None


def test_problems_found_on_a_hit_name_the_same_line_and_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "inventory.yaml").write_text("targets:\n  db: {dsn: embedded}\n")
    (tmp_path / "p.yaml").write_text(PLAYBOOK)
    monkeypatch.chdir(tmp_path)
    outputs = []
    for _ in range(2):
        result = CliRunner().invoke(main, ["validate", "p.yaml"])
        assert result.exit_code == 2
        outputs.append(result.stdout)
    assert list((tmp_path / ".runbook" / "cache" / "documents").glob("*.json"))
    assert outputs[0] == outputs[1]
    assert "p.yaml:15:11: $.steps[2].when: 'missing_flag' is undefined" in outputs[1]


def test_a_changed_file_or_a_damaged_entry_is_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(PLAYBOOK)
    folder = tmp_path / "cache"
    loader.read(path, "playbook.schema.json", folder)
    path.write_text(PLAYBOOK.replace("name: Count", "name: Counted"))
    changed = loader.read(path, "playbook.schema.json", folder)
    assert changed.doc is not None and changed.doc.pending is None
    assert changed.doc.data["steps"][0]["name"] == "Counted"
    for entry in folder.glob("*.json"):
        entry.write_text(json.dumps({"data": {"name": "forged"}, "tables": []}))
    damaged = loader.read(path, "playbook.schema.json", folder)
    assert damaged.doc is not None and damaged.doc.pending is None
    assert damaged.doc.data["name"] == "cached"


def test_entries_of_another_format_are_never_read(tmp_path: Path) -> None:
    raw = PLAYBOOK.encode()
    assert doccache.key("playbook.schema.json", raw) == doccache.key("playbook.schema.json", raw)
    saved = doccache.FORMAT
    try:
        doccache._salt.cache_clear()
        doccache.FORMAT = saved - 1
        old = doccache.key("playbook.schema.json", raw)
    finally:
        doccache.FORMAT = saved
        doccache._salt.cache_clear()
    assert old != doccache.key("playbook.schema.json", raw)


def test_values_json_cannot_carry_exactly_are_read_from_the_file_again(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        PLAYBOOK.replace(
            "vars: {limit: 5}", "vars: {limit: .nan, big: 123456789012345678901234567890}"
        )
    )
    folder = tmp_path / "cache"
    for _ in range(2):
        loaded = loader.read(path, "playbook.schema.json", folder)
        assert loaded.doc is not None and not loaded.problems
        limit = loaded.doc.data["vars"]["limit"]
        assert limit != limit  # still NaN, not null
        assert loaded.doc.data["vars"]["big"] == 123456789012345678901234567890
