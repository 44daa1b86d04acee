"""A cache of parsed, schema-valid documents, keyed by their content.

Parsing YAML with positions and validating it against the schema costs about
0.3 ms per step; a playbook run every morning is the same bytes every morning.
A document that parsed and validated cleanly is stored as JSON (never pickle:
the cache must not be a way to run code) under `.runbook/cache/documents/`,
keyed by the sha256 of runbook's version, the entry format, the schema file and
the document's bytes. Any change to any of them is a miss. An entry is two
lines: the data, read on every hit, and the position tables, decoded only when
an error message needs a line and column.
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

import orjson

from runbook import __version__, resources
from runbook.errors import Position
from runbook.yamlsrc import DataPath, Document

MAX_ENTRIES = 1000
# Bumped when the layout of an entry changes: old entries are then misses.
FORMAT = 3


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


def _tables(encoded: bytes) -> Callable[[Document], None]:
    """Fill a document's position tables from their JSON, when first asked."""

    def decode(doc: Document) -> None:
        tables = orjson.loads(encoded)
        doc.values = {tuple(p): Position(line, col) for p, line, col in tables["values"]}
        doc.keys = {tuple(p): Position(line, col) for p, line, col in tables["keys"]}
        doc.styles = {tuple(p): style for p, style in tables["styles"]}

    return decode


def load(folder: Path, cache_key: str, shown: str, text: str) -> Document | None:
    try:
        stored = (folder / f"{cache_key}.json").read_bytes()
        # Two lines: the data, then the position tables, which stay undecoded
        # until an error message needs a line number.
        data_line, _, tables = stored.partition(b"\n")
        data = orjson.loads(data_line)
    except (OSError, ValueError):
        return None
    if not tables:
        return None
    return Document(path=shown, text=text, data=data, pending=_tables(tables))


def store(folder: Path, cache_key: str, doc: Document) -> None:
    """Best effort: a cache that cannot be written is only a slower run."""
    with contextlib.suppress(OSError, TypeError, ValueError):
        tables = {
            "values": _encode(doc.values, lambda p: (p.line, p.col)),
            "keys": _encode(doc.keys, lambda p: (p.line, p.col)),
            "styles": _encode(doc.styles, lambda s: (s,)),
        }
        # JSON text holds no raw newline (inside strings it is \n): one per line.
        # The standard encoder writes them: it keeps NaN and big integers, which
        # orjson would change or refuse (orjson then refuses to read the entry,
        # and the file is simply parsed again).
        entry = "\n".join(json.dumps(part, separators=(",", ":")) for part in (doc.data, tables))
        write(folder, cache_key, entry)


def write(folder: Path, cache_key: str, entry: str) -> None:
    """Write an entry whole (another run reads it or an older one, never a part)
    and keep the folder bounded. Raises OSError; the callers' caches suppress it."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{cache_key}.{os.getpid()}.tmp"
    tmp.write_text(entry, "utf-8")
    tmp.replace(folder / f"{cache_key}.json")
    prune(folder)


def prune(folder: Path, keep: int = MAX_ENTRIES) -> None:
    """Keep the `keep` newest entries of a cache folder."""
    entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
    for old in entries[: max(0, len(entries) - keep)]:
        with contextlib.suppress(OSError):
            old.unlink()
