"""jsonschema errors → Problems a person can act on.

Each error becomes a Problem at the offending key or value: unknown keys are
named (with a "did you mean"), type errors say what was expected and what was
found, and for discriminated `oneOf`s (channel types, `shell` forms) only the
branch the author meant is reported instead of "is not valid under any of the
given schemas".
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from runbook.errors import Problem
from runbook.load import names
from runbook.load.yamlsrc import DataPath, Document, format_path


def dedupe(problems: Iterable[Problem]) -> list[Problem]:
    """Each problem once; a number that is not finite is only that (not also
    "more than the maximum" and "not an integer")."""
    problems = list(problems)
    infinite = {(p.line, p.col, p.pointer) for p in problems if p.code == "finite"}
    seen: set[tuple[int, int, str, str]] = set()
    out = []
    for p in sorted(problems, key=lambda p: (p.line, p.col, p.pointer, p.message)):
        key = (p.line, p.col, p.pointer, p.message)
        if (p.line, p.col, p.pointer) in infinite and p.code != "finite":
            continue
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _resolve(v: jsonschema.protocols.Validator, schema: Any) -> Any:
    """Follow `$ref`s to the schema they name."""
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 20:
        resolved = v._resolver.lookup(schema["$ref"])  # type: ignore[attr-defined]
        schema = resolved.contents
        seen += 1
    return schema


def _properties(v: jsonschema.protocols.Validator, schema: Any) -> set[str]:
    """Property names a (sub)schema admits, through $ref and allOf."""
    schema = _resolve(v, schema)
    if not isinstance(schema, dict):
        return set()
    names = set(schema.get("properties", {}))
    for sub in schema.get("allOf", []):
        names |= _properties(v, sub)
    return names


def _branch_matches(v: jsonschema.protocols.Validator, branch: Any, instance: Any) -> bool:
    """Does the instance carry this oneOf branch's discriminator (its required keys, its consts)?"""
    branch = _resolve(v, branch)
    if not isinstance(branch, dict) or not isinstance(instance, dict):
        return False
    consts = {
        key: prop["const"]
        for key, prop in branch.get("properties", {}).items()
        if isinstance(prop, dict) and "const" in prop
    }
    if consts:  # a type-tagged branch (channels): the tag alone says which was meant
        return all(instance.get(key) == value for key, value in consts.items())
    required = branch.get("required", [])
    return bool(required) and all(key in instance for key in required)


def _kind_keys(v: jsonschema.protocols.Validator, branches: list[Any]) -> list[str]:
    keys = []
    for branch in branches:
        resolved = _resolve(v, branch)
        if isinstance(resolved, dict) and resolved.get("required"):
            consts = [
                f"{k}: {p['const']}"
                for k, p in resolved.get("properties", {}).items()
                if isinstance(p, dict) and "const" in p
            ]
            keys.append(consts[0] if consts else resolved["required"][-1])
    return keys


def problem(
    doc: Document, path: DataPath, message: str, code: str, *, key: bool = False
) -> Problem:
    where = doc.position(path, key=key)
    return Problem(doc.path, where.line, where.col, format_path(path), message, code)


def translate(
    error: ValidationError, doc: Document, v: jsonschema.protocols.Validator, base: DataPath = ()
) -> Iterator[Problem]:
    """Problems for one jsonschema error; `base` is where the validated value sits."""
    path: DataPath = (*base, *error.absolute_path)
    kind = str(error.validator)
    instance = error.instance
    expected: Any = error.validator_value
    if kind in ("additionalProperties", "unevaluatedProperties") and isinstance(instance, dict):
        allowed = _properties(v, error.schema)
        for extra in sorted(set(instance) - allowed):
            yield problem(doc, (*path, extra), unknown_key(extra, allowed), "unknown-key", key=True)
        return
    if kind == "oneOf":
        yield from _translate_one_of(error, doc, v, path, base)
        return
    if kind == "required":
        missing = [k for k in expected if isinstance(instance, dict) and k not in instance]
        for key in missing:
            yield problem(doc, path, f"missing required key {key!r}", "missing-key")
        return
    if kind == "type":
        advice = ""
        if isinstance(instance, dict) and len(instance) == 1 and "string" in str(expected):
            advice = " (an unquoted ': ' starts a mapping; put the value in quotes)"
        yield problem(
            doc,
            path,
            f"expected {_type_words(expected)}, got {_describe(instance)}{advice}",
            "type",
        )
        return
    if kind == "enum":
        options = [str(o) for o in expected]
        note = names.lookalike_note(instance, options) if isinstance(instance, str) else ""
        hint = difflib.get_close_matches(str(instance), options, n=1)
        suffix = note or (f" (did you mean {hint[0]!r}?)" if hint else "")
        yield problem(
            doc, path, f"{_quote(instance)} is not one of: {', '.join(options)}{suffix}", "enum"
        )
        return
    if kind == "const":
        yield problem(doc, path, f"expected {expected!r}, got {_quote(instance)}", "const")
        return
    if kind == "pattern":
        description = error.schema.get("description") if isinstance(error.schema, dict) else None
        what = f"; expected {description[0].lower()}{description[1:]}" if description else ""
        note = " (it holds non-ASCII characters)" if not str(instance).isascii() else ""
        yield problem(doc, path, f"{_quote(instance)} is not valid{note}{what}", "pattern")
        return
    if kind in ("maximum", "minimum"):
        description = error.schema.get("description", "") if isinstance(error.schema, dict) else ""
        unit = " seconds" if "duration" in str(description).lower() else ""
        bound = "more than the maximum" if kind == "maximum" else "less than the minimum"
        shown = f"{instance:g}" if isinstance(instance, float) else repr(instance)
        yield problem(doc, path, f"{shown} is {bound} of {expected:g}{unit}", kind)
        return
    if kind == "minItems":
        yield problem(
            doc,
            path,
            f"the list is empty; it needs at least {expected} item(s)",
            "min-items",
        )
        return
    if kind == "propertyNames":
        # The error's instance is the offending key; point at it.
        note = " (it holds non-ASCII characters)" if not str(instance).isascii() else ""
        yield problem(
            doc,
            (*path, str(instance)),
            f"{_quote(instance)} is not a valid name here{note}",
            "name",
            key=True,
        )
        return
    if kind == "uniqueItems":
        yield problem(doc, path, "list has duplicate entries", "unique")
        return
    yield problem(doc, path, error.message, kind)


def _translate_one_of(
    error: ValidationError,
    doc: Document,
    v: jsonschema.protocols.Validator,
    path: DataPath,
    base: DataPath,
) -> Iterator[Problem]:
    branches: Any = error.validator_value
    instance = error.instance
    matching = [i for i, b in enumerate(branches) if _branch_matches(v, b, instance)]
    if len(matching) > 1:
        # `gate` is a step kind and also a key of query steps: a branch whose tag
        # another matching branch admits as a plain property was not meant.
        keys = {i: _resolve(v, branches[i]).get("required", [])[-1:] for i in matching}
        matching = [
            i
            for i in matching
            if not any(set(keys[i]) <= _properties(v, branches[j]) for j in matching if j != i)
        ] or matching
    if len(matching) == 1:
        index = matching[0]
        sub = [
            e
            for e in error.context or []
            if e.relative_schema_path and e.relative_schema_path[0] == index
        ]
        for suberror in sub:
            yield from translate(suberror, doc, v, base)
        if sub:
            return
    kinds = _kind_keys(v, branches)
    if isinstance(instance, dict) and kinds and len(kinds) == len(branches):
        is_step = all(str(b.get("$ref", "")).startswith("#/$defs/step_") for b in branches)
        present = [k for k in kinds if k.split(":")[0] in instance]
        if len(present) > 1 and not any(":" in k for k in kinds):
            both = " and ".join(repr(k) for k in present)
            message = (
                f"a step does one thing, but this one has {both}; split it into two steps"
                if is_step
                else f"give only one of {', '.join(map(repr, kinds))}, not {both}"
            )
            yield problem(doc, path, message, "one-of")
            return
        if not matching:
            message = (
                f"the step has no action: add one of {', '.join(kinds)}"
                if is_step
                else f"expected one of: {', '.join(kinds)}"
            )
            yield problem(doc, path, message, "one-of")
            return
    # Alternatives of different types (string or list, string or object).
    same_type = [
        e
        for e in error.context or []
        if len(e.relative_schema_path) > 1 and (e.validator != "type" or e.relative_path)
    ]
    type_ok = _types_admitting(v, branches, instance)
    if type_ok:
        by_branch: dict[int, list[ValidationError]] = {}
        for e in same_type:
            by_branch.setdefault(int(e.relative_schema_path[0]), []).append(e)
        for index in type_ok:
            for suberror in by_branch.get(index, []):
                yield from translate(suberror, doc, v, base)
            if by_branch.get(index):
                return
    words = [_branch_words(v, b) for b in branches]
    yield problem(doc, path, f"expected {' or '.join(words)}, got {_describe(instance)}", "one-of")


def _types_admitting(
    v: jsonschema.protocols.Validator, branches: list[Any], instance: Any
) -> list[int]:
    out = []
    for i, branch in enumerate(branches):
        resolved = _resolve(v, branch)
        types = resolved.get("type") if isinstance(resolved, dict) else None
        if types is None:
            continue
        types = [types] if isinstance(types, str) else types
        if any(_is_type(instance, t) for t in types):
            out.append(i)
    return out


def _is_type(instance: Any, name: str) -> bool:
    checks = {
        "string": lambda x: isinstance(x, str),
        "object": lambda x: isinstance(x, dict),
        "array": lambda x: isinstance(x, list),
        "boolean": lambda x: isinstance(x, bool),
        "integer": lambda x: isinstance(x, int) and not isinstance(x, bool),
        "number": lambda x: isinstance(x, int | float) and not isinstance(x, bool),
        "null": lambda x: x is None,
    }
    return bool(checks.get(name, lambda x: False)(instance))


def _branch_words(v: jsonschema.protocols.Validator, branch: Any) -> str:
    resolved = _resolve(v, branch)
    if not isinstance(resolved, dict):
        return "a value"
    if "required" in resolved and resolved.get("type") == "object":
        return "a mapping with " + " and ".join(repr(k) for k in resolved["required"])
    if "type" in resolved:
        return _type_words(resolved["type"])
    return "a value"


def _type_words(types: str | list[str]) -> str:
    names = {
        "string": "a string",
        "object": "a mapping",
        "array": "a list",
        "boolean": "true or false",
        "integer": "an integer",
        "number": "a number",
        "null": "null",
    }
    if isinstance(types, str):
        types = [types]
    return " or ".join(names.get(t, t) for t in types)


def _describe(instance: Any) -> str:
    if instance is None:
        return "null"
    if isinstance(instance, bool):
        return f"{str(instance).lower()}"
    if isinstance(instance, dict):
        return "a mapping"
    if isinstance(instance, list):
        return "a list"
    if isinstance(instance, str):
        shown = instance if len(instance) < 40 else instance[:37] + "..."
        return f"the string {names.shown(shown)}"
    return f"{instance!r}"


def _quote(value: Any) -> str:
    return names.shown(value) if isinstance(value, str) else repr(value)


def unknown_key(key: str, allowed: Iterable[str]) -> str:
    """`unknown key 'regster' (did you mean 'register'?)`; a look-alike is named so."""
    allowed = sorted(allowed)
    note = names.lookalike_note(key, allowed)
    if note and "look-alike" in note:
        return f"unknown key {names.shown(key)}{note}"
    hint = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
    if not hint and allowed:
        suffix = f"; allowed here: {', '.join(allowed)}"
    return f"unknown key {names.shown(key)}{note}{suffix}"
