"""Fast validators derived from the schemas (which stay the single source of truth).

jsonschema spends most of its time resolving `$ref`s and collecting annotations
for `unevaluatedProperties`: half a millisecond per step, more than the query
the step runs. Here the schemas are flattened once: references inlined,
`allOf` + `unevaluatedProperties: false` merged into `properties` +
`additionalProperties: false`. Steps are validated one by
one against their own kind's definition (the kind is known from the step's
keys), nested step lists being validated the same way, one level at a time.
`tests/load/schema_test.py` checks that this agrees with the published schema.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

SHALLOW_STEPS = {"type": "array", "items": {"type": "object"}, "minItems": 1}


def flatten(node: Any, defs: dict[str, Any], *, shallow_steps: bool) -> Any:
    if isinstance(node, list):
        return [flatten(item, defs, shallow_steps=shallow_steps) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if shallow_steps and name == "steps":
            return dict(SHALLOW_STEPS)
        target = flatten(defs[name], defs, shallow_steps=shallow_steps)
        # The definition's description says what the value must look like (used in messages).
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return {**flatten(rest, defs, shallow_steps=shallow_steps), **target}
    out = {
        k: flatten(v, defs, shallow_steps=shallow_steps)
        for k, v in node.items()
        if k not in ("$defs", "$id", "$schema", "title")
    }
    if out.get("unevaluatedProperties") is False and "allOf" in out:
        properties: dict[str, Any] = {}
        required: list[str] = []
        for part in out.pop("allOf"):
            properties.update(part.get("properties", {}))
            required.extend(part.get("required", []))
        # The definition's own properties win over the shared ones (a channel's `type: const`).
        properties.update(out.get("properties", {}))
        out["properties"] = properties
        out["required"] = list(dict.fromkeys([*required, *out.get("required", [])]))
        del out["unevaluatedProperties"]
        out["additionalProperties"] = False
    return out


def _finite_type(
    validator: jsonschema.protocols.Validator, types: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    """`type`, and a number must be finite: `.inf`, `.nan` and `1e400` (which
    YAML reads as infinity) pass `minimum`/`maximum` or overflow later."""
    yield from _TYPE(validator, types, instance, schema)
    if isinstance(instance, float) and not math.isfinite(instance):
        yield ValidationError(
            f"{_number_text(instance)} is not a finite number; numbers here must be finite",
            validator="finite",
        )


def _max_seconds(
    validator: jsonschema.protocols.Validator, limit: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    """`maxSeconds`: a duration written as text (`9999d`) is bounded like a number."""
    from runbook.model import seconds

    if isinstance(instance, str) and re.search(schema.get("pattern", ""), instance):
        total = seconds(instance)
        if total is not None and total > limit:
            yield ValidationError(
                f"{instance!r} is {total:g} seconds, more than the maximum of {limit:g}",
                validator="maxSeconds",
            )


def _number_text(value: float) -> str:
    return ".nan" if math.isnan(value) else ".inf" if value > 0 else "-.inf"


_TYPE = jsonschema.Draft202012Validator.VALIDATORS["type"]
_Validator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator, {"type": _finite_type, "maxSeconds": _max_seconds}
)


def _validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    validator: jsonschema.protocols.Validator = _Validator(schema)
    return validator


@functools.cache
def playbook_validators(
    source: str,
) -> tuple[jsonschema.protocols.Validator, dict[str, jsonschema.protocols.Validator]]:
    """(top level with shallow steps, {kind: step validator with shallow nested steps})."""
    from runbook.load import schema

    doc = schema.load(source)
    defs = doc["$defs"]
    top = _validator(
        flatten({k: v for k, v in doc.items() if k != "$defs"}, defs, shallow_steps=True)
    )
    steps = {}
    for ref in defs["step"]["oneOf"]:
        name = ref["$ref"].rsplit("/", 1)[-1]
        kind = defs[name]["required"][-1]
        steps[kind] = _validator(flatten(defs[name], defs, shallow_steps=True))
    return top, steps


@functools.cache
def inventory_validator(source: str) -> jsonschema.protocols.Validator:
    from runbook.load import schema

    doc = schema.load(source)
    return _validator(
        flatten({k: v for k, v in doc.items() if k != "$defs"}, doc["$defs"], shallow_steps=False)
    )
