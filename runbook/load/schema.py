"""The schemas: loading them, and checking documents against them.

`schemas/*.schema.json` are the truth (editors read them too); the checks run
on flattened validators derived from them (`runbook.load.flatschema`), and every
error is turned into a Problem by `runbook.load.schemaerrors`.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

from runbook import resources
from runbook.errors import Problem
from runbook.load.yamlsrc import DataPath, Document

if TYPE_CHECKING:  # jsonschema is imported when a document needs checking
    import jsonschema
    from referencing import Registry

PLAYBOOK = "playbook.schema.json"
INVENTORY = "inventory.schema.json"


@functools.cache
def load(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((resources.schemas_dir() / name).read_text("utf-8"))
    return schema


@functools.cache
def _registry() -> Registry:
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    resources_ = [
        (load(name)["$id"], Resource.from_contents(load(name), default_specification=DRAFT202012))
        for name in (PLAYBOOK, INVENTORY)
    ]
    return Registry().with_resources(resources_)


@functools.cache
def validator(name: str) -> jsonschema.protocols.Validator:
    """The published schema as it is (slow; for tests and tools)."""
    import jsonschema

    schema = load(name)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, registry=_registry())


def step_kinds() -> list[str]:
    """The step kinds the playbook schema defines, in schema order."""
    defs = load(PLAYBOOK)["$defs"]
    kinds = []
    for ref in defs["step"]["oneOf"]:
        name = ref["$ref"].rsplit("/", 1)[-1]
        kinds.append(defs[name]["required"][-1])
    return kinds


@functools.cache
def kind_keys() -> tuple[str, ...]:
    return tuple(step_kinds())


def step_kind(step: dict[str, Any]) -> list[str]:
    """The action keys of a step; `gate` is also a key of other kinds' steps."""
    present = [k for k in kind_keys() if k in step]
    if len(present) > 1 and "gate" in present:
        present.remove("gate")
    return present


def _misspelt_kinds(
    step: dict[str, Any], validators: dict[str, jsonschema.protocols.Validator]
) -> list[str]:
    """Keys of a step with no action that no step kind allows and that look
    like an action's key (`querry`, `Query`)."""
    import difflib

    known = {
        k
        for v in validators.values()
        if isinstance(v.schema, dict)
        for k in v.schema.get("properties", {})
    }
    lowered = {k.lower(): k for k in kind_keys()}
    return [
        key
        for key in step
        if isinstance(key, str)
        and key not in known
        and (
            key.lower() in lowered or difflib.get_close_matches(key, kind_keys(), n=1, cutoff=0.75)
        )
    ]


def check(doc: Document, name: str) -> list[Problem]:
    """Every schema problem of `doc`, sorted by position."""
    from runbook.load import flatschema
    from runbook.load.schemaerrors import dedupe, translate

    problems: list[Problem] = []
    if name != PLAYBOOK:
        v = flatschema.inventory_validator(name)
        for error in v.iter_errors(doc.data):
            problems.extend(translate(error, doc, v))
        return dedupe(problems)
    top, steps = flatschema.playbook_validators(name)
    for error in top.iter_errors(doc.data):
        problems.extend(translate(error, doc, top))
    if isinstance(doc.data, dict) and isinstance(doc.data.get("steps"), list):
        problems.extend(_check_steps(doc, doc.data["steps"], ("steps",), steps))
    return dedupe(problems)


def _check_steps(
    doc: Document,
    items: list[Any],
    path: DataPath,
    validators: dict[str, jsonschema.protocols.Validator],
) -> list[Problem]:
    from runbook.load.schemaerrors import problem, translate, unknown_key

    problems: list[Problem] = []
    for i, item in enumerate(items):
        where = (*path, i)
        if not isinstance(item, dict):
            continue  # the list's own schema reports it
        kinds = step_kind(item)
        if not kinds:
            misspelt = _misspelt_kinds(item, validators)
            for key in misspelt:  # `querry:` is a typo, not a step with no action
                message = unknown_key(key, kind_keys())
                problems.append(problem(doc, (*where, key), message, "unknown-key", key=True))
            if not misspelt:
                message = f"the step has no action: add one of {', '.join(kind_keys())}"
                problems.append(problem(doc, where, message, "one-of"))
            continue
        if len(kinds) > 1:
            both = " and ".join(repr(k) for k in kinds)
            message = f"a step does one thing, but this one has {both}; split it into two steps"
            problems.append(problem(doc, where, message, "one-of"))
            continue
        v = validators[kinds[0]]
        for error in v.iter_errors(item):
            problems.extend(translate(error, doc, v, where))
        for nested in ("rollback", "transaction"):
            if isinstance(item.get(nested), list):
                problems.extend(_check_steps(doc, item[nested], (*where, nested), validators))
    return problems
