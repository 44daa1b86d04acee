"""Variables: environment references, `-e` values, and native rendering."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from runbook import template, yamlsrc
from runbook.errors import InvalidFiles, UsageError
from runbook.model import EnvRef

_WHOLE = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.DOTALL)


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
    """`-e key=value`, `-e @file.yaml`, `-e '{"json": 1}'`; later ones win."""
    out: dict[str, Any] = {}
    for item in items:
        if item.startswith("@"):
            path = Path(item[1:])
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise UsageError(f"-e {item}: cannot read {path}: {exc.strerror}") from None
            try:
                data = yamlsrc.parse(str(path), raw).data
            except yamlsrc.YamlError as exc:
                raise InvalidFiles([yamlsrc.to_problem(str(path), exc)]) from None
            out.update(data)
        elif item.lstrip().startswith("{"):
            try:
                data = json.loads(item)
            except ValueError as exc:
                raise UsageError(f"-e {item!r}: not valid JSON: {exc}") from None
            if not isinstance(data, dict):
                raise UsageError(f"-e {item!r}: JSON must be an object")
            out.update(data)
        elif "=" in item:
            key, value = item.split("=", 1)
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise UsageError(f"-e {item!r}: {key!r} is not a variable name")
            out[key] = yamlsrc.plain_scalar(value)
        else:
            raise UsageError(f"-e {item!r}: expected key=value, @file.yaml or a JSON object")
    return out


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
