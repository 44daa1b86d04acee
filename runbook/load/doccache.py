"""A cache of parsed, schema-valid documents, keyed by their content.

Parsing YAML with positions and validating it against the schema costs about
0.3 ms per step; a playbook run every morning is the same bytes every morning.
A document that parsed and validated cleanly is stored as JSON (never pickle:
the cache must not be a way to run code) under `.runbook/cache/documents/`,
keyed by the sha256 of runbook's version, the entry format, the schema file and
the document's bytes. Any change to any of them is a miss. An entry is two
lines: the data, read on every hit, and the position tables, decoded only when
an error message needs a line and column.

A parsed inventory holds what the file holds, passwords included, so entries
are never more readable than a private source file: every entry is written
0600 (a temporary file created 0600, then renamed over the entry) in folders
kept 0700, and an older, wider entry is tightened when it is next read. And
since an entry stands in for a file's content, only entries this user wrote are
believed: an entry or folder owned by someone else, or writable by others, is
a miss (another user could otherwise plant the "parse" of a playbook).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from runbook import __version__, resources
from runbook.errors import Position
from runbook.load.yamlsrc import DataPath, Document

MAX_ENTRIES = 1000
# Bumped when the layout of an entry changes: old entries are then misses.
FORMAT = 4


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
    stored = read_entry(folder, cache_key)
    if stored is None:
        return None
    # Two lines: the data, then the position tables, which stay undecoded
    # until an error message needs a line number.
    data_line, _, tables = stored.partition(b"\n")
    try:
        data = orjson.loads(data_line)
    except ValueError:
        return None
    if not tables:
        return None
    return Document(path=shown, text=text, data=data, pending=_tables(tables))


def read_entry(folder: Path, cache_key: str) -> bytes | None:
    """An entry's bytes, if this user wrote it into a folder only they control."""
    if not _private_folder(folder, create=False):
        return None
    try:
        fd = os.open(folder / f"{cache_key}.json", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
            return None
        if info.st_mode & 0o077:
            os.fchmod(fd, 0o600)  # written by an older runbook, readable by others
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    except OSError:
        return None
    finally:
        os.close(fd)


def _private_folder(folder: Path, *, create: bool) -> bool:
    """Whether `folder` is a real folder of this user's that no one else may
    write (made 0700 if `create`; a wider one of ours is tightened)."""
    if create:
        cache = folder.parent
        for part in (cache, folder):
            with contextlib.suppress(FileExistsError):
                part.mkdir(mode=0o700, parents=True)
    try:
        info = os.lstat(folder)
        parent = os.lstat(folder.parent)
    except OSError:
        return False
    for where, st in ((folder.parent, parent), (folder, info)):
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            return False
        if st.st_mode & 0o077:
            try:
                os.chmod(where, 0o700)
            except OSError:
                return False
    return True


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
    """Write an entry whole (another run reads it or an older one, never a part),
    private (0600 from its creation), and keep the folder bounded. Raises
    OSError; the callers' caches suppress it."""
    if not _private_folder(folder, create=True):
        raise PermissionError(f"{folder} is not a private folder of this user's")
    tmp = folder / f".{cache_key}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8", closefd=False) as f:
            f.write(entry)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    os.close(fd)
    tmp.replace(folder / f"{cache_key}.json")
    prune(folder)


def prune(folder: Path, keep: int = MAX_ENTRIES) -> None:
    """Keep the `keep` newest entries of a cache folder."""
    entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
    for old in entries[: max(0, len(entries) - keep)]:
        with contextlib.suppress(OSError):
            old.unlink()
