from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from runbook.load import schema

NAMES = [schema.PLAYBOOK, schema.INVENTORY]


def _objects(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _objects(value, f"{path}/{i}")


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid_2020_12_with_id(name: str) -> None:
    doc = schema.load(name)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"].endswith(name)
    jsonschema.Draft202012Validator.check_schema(doc)


@pytest.mark.parametrize("name", NAMES)
def test_every_property_has_a_description(name: str) -> None:
    missing = [
        f"{path}/properties/{prop}"
        for path, node in _objects(schema.load(name))
        for prop, sub in node.get("properties", {}).items()
        if isinstance(node.get("properties"), dict) and "description" not in sub
    ]
    assert missing == []


@pytest.mark.parametrize("name", NAMES)
def test_objects_with_properties_are_closed(name: str) -> None:
    """An object that lists its properties refuses others (directly or via unevaluated)."""
    defs = schema.load(name)["$defs"]
    # Shared bases are mixed into closed step/channel definitions by allOf.
    mixins = {"common", "db_options", "channel_common"} & set(defs)
    open_ = []
    for path, node in _objects(schema.load(name)):
        if not isinstance(node.get("properties"), dict) or path.endswith("/properties"):
            continue
        if any(path == f"#/$defs/{m}" for m in mixins):
            continue
        closed = (
            node.get("additionalProperties") is False or node.get("unevaluatedProperties") is False
        )
        if not closed:
            open_.append(path)
    assert open_ == []


def test_step_kinds_in_schema_order() -> None:
    assert schema.step_kinds()[:3] == ["query", "sql", "sql_file"]
    assert "transaction" in schema.step_kinds()


def _documents() -> list[tuple[str, str]]:
    from ..conftest import REPO

    out = []
    for path in [
        *(REPO / "tests" / "bad_input").glob("*.yaml"),
        *(REPO / "playbooks").rglob("*.yaml"),
        REPO / "inventory.yaml",
    ]:
        name = schema.INVENTORY if "inventory" in path.name else schema.PLAYBOOK
        out.append((str(path), name))
    return out


@pytest.mark.parametrize(("path", "name"), _documents(), ids=lambda v: v.rsplit("/", 1)[-1])
def test_fast_validation_agrees_with_the_published_schema(path: str, name: str) -> None:
    from pathlib import Path

    from runbook.load import yamlsrc

    try:
        doc = yamlsrc.parse(path, Path(path).read_bytes())
    except yamlsrc.YamlError:
        return  # not YAML: never reaches the schema
    published = schema.validator(name).is_valid(doc.data)
    assert published == (schema.check(doc, name) == [])
