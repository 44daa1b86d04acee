"""A cache of parsed, schema-valid documents, keyed by their content.

Parsing YAML with positions and validating it against the schema costs about
0.3 ms per step; a playbook run every morning is the same bytes every morning.
A document that parsed and validated cleanly is stored as JSON (never pickle:
the cache must not be a way to run code) under `.runbook/cache/`, keyed by the
sha256 of runbook's version, the schema file and the document's bytes. Any
change to any of them is a miss.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from runbook import __version__, resources
from runbook.errors import Position
from runbook.yamlsrc import DataPath, Document

MAX_ENTRIES = 1000


@functools.cache
def _salt(schema_name: str) -> bytes:
    schema_bytes = (resources.schemas_dir() / schema_name).read_bytes()
    return f"{__version__}\0{schema_name}\0".encode() + hashlib.sha256(schema_bytes).digest()


def key(schema_name: str, raw: bytes) -> str:
    return hashlib.sha256(_salt(schema_name) + raw).hexdigest()


def _encode(table: dict[DataPath, Any], value: Any) -> list[Any]:
    return [[list(path), *value(v)] for path, v in table.items()]


def load(folder: Path, cache_key: str, shown: str, text: str) -> Document | None:
    try:
        stored = json.loads((folder / f"{cache_key}.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    try:
        return Document(
            path=shown,
            text=text,
            data=stored["data"],
            values={tuple(p): Position(line, col) for p, line, col in stored["values"]},
            keys={tuple(p): Position(line, col) for p, line, col in stored["keys"]},
            styles={tuple(p): style for p, style in stored["styles"]},
        )
    except (KeyError, TypeError, ValueError):
        return None


def store(folder: Path, cache_key: str, doc: Document) -> None:
    """Best effort: a cache that cannot be written is only a slower run."""
    with contextlib.suppress(OSError, TypeError, ValueError):
        folder.mkdir(parents=True, exist_ok=True)
        payload = {
            "data": doc.data,
            "values": _encode(doc.values, lambda p: (p.line, p.col)),
            "keys": _encode(doc.keys, lambda p: (p.line, p.col)),
            "styles": _encode(doc.styles, lambda s: (s,)),
        }
        tmp = folder / f".{cache_key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(payload), "utf-8")
        tmp.replace(folder / f"{cache_key}.json")
        _prune(folder)


def _prune(folder: Path) -> None:
    entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
    for old in entries[: max(0, len(entries) - MAX_ENTRIES)]:
        with contextlib.suppress(OSError):
            old.unlink()
