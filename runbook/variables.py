"""Variables: environment references, `-e` values, and native rendering."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from runbook.errors import InvalidFiles, UsageError
from runbook.load import names, yamlsrc
from runbook.model import EnvRef
from runbook.sqltemplate import template

_WHOLE = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.DOTALL)
# How deep an -e value may nest: templates, the journal's JSON and the
# renderers all walk values recursively, and Python's stack is ~1000 frames.
MAX_DEPTH = 64


def resolve(value: Any, what: str, secrets: set[str]) -> Any:
    """The value of a variable; `{from_env: NAME}` is read now (secret ones remembered)."""
    if not isinstance(value, EnvRef):
        return value
    raw = os.environ.get(value.name)
    if raw is None:
        if value.default is None:
            raise UsageError(f"{what}: environment variable {value.name} is not set")
        raw = value.default
    if value.secret:
        secrets.add(raw)
    return raw


def resolve_all(values: Mapping[str, Any], what: str, secrets: set[str]) -> dict[str, Any]:
    return {name: resolve(v, f"{what} variable {name!r}", secrets) for name, v in values.items()}


def parse_extra(items: Iterable[str]) -> dict[str, Any]:
    """`-e key=value`, `-e @file.yaml`, `-e '{"json": 1}'`; later ones win.

    Messages name the argument by its key or file, never by its value: an -e
    value may be a secret."""
    out: dict[str, Any] = {}
    for item in items:
        data: Any
        if item.startswith("@"):
            path = Path(item[1:])
            what = f"-e {names.shown(item)}"
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise UsageError(f"{what}: cannot read {path}: {exc.strerror}") from None
            try:
                data = yamlsrc.parse(str(path), raw).data
            except yamlsrc.YamlError as exc:
                raise InvalidFiles([yamlsrc.to_problem(str(path), exc)]) from None
        elif item.lstrip().startswith("{"):
            what = "-e (a JSON object)"
            try:
                data = json.loads(item, parse_constant=_refuse_constant)
            except RecursionError:
                raise UsageError(f"{what}: nested deeper than {MAX_DEPTH} levels") from None
            except ValueError as exc:
                raise UsageError(f"{what}: not valid JSON: {exc}") from None
            if not isinstance(data, dict):
                raise UsageError(f"{what}: JSON must be an object")
        elif "=" in item:
            key, value = item.split("=", 1)
            what = f"-e {names.shown(key)}=…"
            data = {key: yamlsrc.plain_scalar(value)}
        else:
            raise UsageError(
                f"-e {names.shown(item[:40])}: expected key=value, @file.yaml or a JSON object"
            )
        _check_extra(what, data)
        out.update(data)
    return out


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number runbook accepts (only finite numbers)")


def _check_extra(what: str, data: dict[str, Any]) -> None:
    """-e values: names runbook does not give itself, bounded depth, no NUL."""
    for key in data:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise UsageError(f"{what}: {names.shown(key)} is not a variable name")
        why = names.reserved_why(key)
        if why:
            raise UsageError(f"{what}: {why}")
    problem = _value_problem(data)
    if problem:
        raise UsageError(f"{what}: {problem}")


def _value_problem(data: Any) -> str | None:
    """Why a value cannot be used: too deep, or a NUL in a string. Iterative,
    so that a value too deep for recursion is still measured."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(value, str):
            if "\x00" in value:
                return "NUL character in a value (PostgreSQL and the OS would cut the text there)"
        elif isinstance(value, float) and not math.isfinite(value):
            return f"{value} is not a number runbook accepts (only finite numbers)"
        elif isinstance(value, dict):
            stack.extend((k, depth + 1) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return None


def render_native(value: Any, scope: Mapping[str, Any]) -> Any:
    """Render a `set`/`vars` value: a lone `{{ expr }}` keeps its type."""
    if isinstance(value, str):
        match = _WHOLE.match(value)
        if match and "{{" not in match.group(1) and "}}" not in match.group(1):
            return template.evaluate(match.group(1), scope)
        return template.render_text(value, scope)
    if isinstance(value, list):
        return [render_native(v, scope) for v in value]
    if isinstance(value, dict):
        return {k: render_native(v, scope) for k, v in value.items()}
    return value
