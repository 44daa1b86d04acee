from __future__ import annotations

from runbook import actions
from runbook.load import schema


def test_registry_and_schema_list_the_same_step_kinds() -> None:
    assert list(actions.REGISTRY) == schema.step_kinds()


def test_every_kind_has_a_schema_definition_requiring_its_key() -> None:
    defs = schema.load(schema.PLAYBOOK)["$defs"]
    for kind in actions.REGISTRY:
        assert kind in defs[f"step_{kind}"]["required"]
        assert defs[f"step_{kind}"]["unevaluatedProperties"] is False
