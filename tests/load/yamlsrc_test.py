from __future__ import annotations

import tracemalloc

import pytest

from runbook.errors import Position
from runbook.load import yamlsrc


def parse(text: str | bytes) -> yamlsrc.Document:
    raw = text.encode() if isinstance(text, str) else text
    return yamlsrc.parse("f.yaml", raw)


def error(text: str | bytes) -> yamlsrc.YamlError:
    with pytest.raises(yamlsrc.YamlError) as info:
        parse(text)
    return info.value


def test_core_schema_scalars() -> None:
    doc = parse("a: [on, no, yes, 08:00, 010, 0x1f, 0o17, 1e3, ~, true, False, 2024-01-01, '1']\n")
    assert doc.data["a"] == [
        "on",
        "no",
        "yes",
        "08:00",
        10,
        31,
        15,
        1000.0,
        None,
        True,
        False,
        "2024-01-01",
        "1",
    ]


def test_positions_of_keys_and_values() -> None:
    doc = parse("name: x\nsteps:\n  - name: a\n    query: |\n      SELECT 1\n")
    assert doc.values[("steps", 0, "query")] == Position(4, 12)
    assert doc.keys[("steps", 0, "query")] == Position(4, 5)
    assert doc.styles[("steps", 0, "query")] == "|"
    assert doc.position(("steps", 0, "missing")) == Position(3, 5)


def test_keys_keep_their_text() -> None:
    assert parse("on: 1\n1: 2\nnull: 3\n").data == {"on": 1, "1": 2, "null": 3}


def test_duplicate_key_names_both_lines() -> None:
    e = error("a: 1\nb:\n  c: 1\n  c: 2\n")
    assert e.position == Position(4, 3)
    assert "duplicate key 'c' (first defined at line 3, column 3)" in e.message


def test_tab_indentation() -> None:
    e = error("a:\n\tb: 1\n")
    assert (e.position, e.code) == (Position(2, 1), "tab")


def test_tab_inside_block_scalar_is_content() -> None:
    assert parse("a: |\n  SELECT\n  \tx\n").data == {"a": "SELECT\n\tx\n"}


def test_non_utf8_names_byte_position() -> None:
    e = error(b"a: 1\nb: caf\xe9\n")
    assert e.position == Position(2, 7)
    assert "not valid UTF-8 (byte 0xe9)" in e.message


def test_bom_is_accepted() -> None:
    assert parse(b"\xef\xbb\xbfa: 1\n").data == {"a": 1}


@pytest.mark.parametrize("text", ["", "   \n", "# just a comment\n", "---\n"])
def test_empty(text: str) -> None:
    e = error(text)
    assert e.code == "empty" and "empty" in e.message


@pytest.mark.parametrize(("text", "what"), [("- a\n", "list"), ("hello\n", "scalar value")])
def test_not_a_mapping(text: str, what: str) -> None:
    e = error(text)
    assert e.code == "not-mapping" and what in e.message and e.position == Position(1, 1)


def test_merge_keys_explicit_wins() -> None:
    doc = parse("x: &d {k: 1, j: 3}\ny:\n  <<: *d\n  k: 2\n")
    assert doc.data["y"] == {"k": 2, "j": 3}


def test_unknown_tags_refused() -> None:
    e = error("a: !!python/object/apply:os.system ['true']\n")
    assert e.code == "tag" and e.position == Position(1, 4)


def test_recursive_alias() -> None:
    assert error("a: &x [*x]\n").code == "alias-loop"


def test_syntax_error_has_position() -> None:
    e = error("a: [1, 2\nb: 3\n")
    assert e.code == "yaml-syntax" and e.position.line == 2


def _laughs(levels: int) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_refused_without_expanding() -> None:
    tracemalloc.start()
    e = error(_laughs(10))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert e.code == "alias-bomb"
    assert e.position == Position(10, 1)  # the key that expands most
    assert "alias bomb" in e.message
    # A bomb expands to ~10^9 values: refusing it must not build any of them.
    assert peak < 50_000_000


def test_modest_aliases_allowed() -> None:
    assert parse(_laughs(3)).data["c"][0][0] == ["lol"] * 9


def test_deep_nesting_refused() -> None:
    e = error("a: " + "[" * 20000 + "]" * 20000 + "\n")
    assert e.code == "too-deep"


def test_format_path() -> None:
    assert yamlsrc.format_path(("steps", 2, "gate", "that")) == "$.steps[2].gate.that"
    assert yamlsrc.format_path(("vars", "has space")) == "$.vars['has space']"
