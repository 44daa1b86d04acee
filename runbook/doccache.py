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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runbook import __version__, resources
from runbook.errors import Position
from runbook.yamlsrc import DataPath, Document

MAX_ENTRIES = 1000
# Bumped when the layout of an entry changes: old entries are then misses.
FORMAT = 2


@functools.cache
def _salt(schema_name: str) -> bytes:
    schema_bytes = (resources.schemas_dir() / schema_name).read_bytes()
    return (
        f"{__version__}\0{FORMAT}\0{schema_name}\0".encode() + hashlib.sha256(schema_bytes).digest()
    )


def key(schema_name: str, raw: bytes) -> str:
    return hashlib.sha256(_salt(schema_name) + raw).hexdigest()


def _encode(table: dict[DataPath, Any], value: Any) -> list[Any]:
    return [[list(path), *value(v)] for path, v in table.items()]


def _tables(encoded: str) -> Callable[[Document], None]:
    """Fill a document's position tables from their JSON, when first asked."""

    def decode(doc: Document) -> None:
        tables = json.loads(encoded)
        doc.values = {tuple(p): Position(line, col) for p, line, col in tables["values"]}
        doc.keys = {tuple(p): Position(line, col) for p, line, col in tables["keys"]}
        doc.styles = {tuple(p): style for p, style in tables["styles"]}

    return decode


def load(folder: Path, cache_key: str, shown: str, text: str) -> Document | None:
    try:
        stored = json.loads((folder / f"{cache_key}.json").read_text("utf-8"))
        data, tables = stored["data"], stored["tables"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(tables, str):
        return None
    # The tables stay a string until an error message needs a line number.
    return Document(path=shown, text=text, data=data, pending=_tables(tables))


def store(folder: Path, cache_key: str, doc: Document) -> None:
    """Best effort: a cache that cannot be written is only a slower run."""
    with contextlib.suppress(OSError, TypeError, ValueError):
        folder.mkdir(parents=True, exist_ok=True)
        tables = {
            "values": _encode(doc.values, lambda p: (p.line, p.col)),
            "keys": _encode(doc.keys, lambda p: (p.line, p.col)),
            "styles": _encode(doc.styles, lambda s: (s,)),
        }
        payload = {"data": doc.data, "tables": json.dumps(tables, separators=(",", ":"))}
        tmp = folder / f".{cache_key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(payload), "utf-8")
        tmp.replace(folder / f"{cache_key}.json")
        prune(folder)


def prune(folder: Path, keep: int = MAX_ENTRIES) -> None:
    """Keep the `keep` newest entries of a cache folder."""
    entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
    for old in entries[: max(0, len(entries) - keep)]:
        with contextlib.suppress(OSError):
            old.unlink()
