"""Checks that passed, remembered: the same files pass the same checks again.

Checking a playbook's meaning (names, templates, includes, SQL files) costs
about 0.02 ms per step, every run; a morning check is the same files every
morning. When every check passes, an entry is written under
`.runbook/cache/checks/` (0600, in a 0700 folder), keyed by runbook's version
and code, the project's and the inventory's place and text, and the playbook's
place and text. It lists every other file the checks read (included playbooks,
SQL files) as they reached it: the name as written, the file it resolved to
(symlinks followed) and its sha256. A later run with the same key resolves
each name again, applies the project's bounds again (includes inside the
project, SQL files inside sql/) and re-reads each file; only if every one
leads to the same file with the same content are the checks skipped. Only
the verdict is kept: what a run sends is always rendered from the playbook it
loaded, never read back from here. A symlink re-pointed, a folder on the path
swapped, a file changed: checking again, which reports what is wrong. A
damaged or missing entry means checking again too. Only passes are
remembered, so a problem is always reported from a fresh check.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from runbook import __version__
from runbook.checks.common import Context
from runbook.load import doccache, sqlfiles
from runbook.model import Playbook, Step

# Bumped when what the checks look at changes without a version change.
FORMAT = 3


def _folder(ctx: Context) -> Path:
    return ctx.root / ".runbook" / "cache" / "checks"


@functools.cache
def _code() -> str:
    """runbook's own code as it is now: a check added or changed without a new
    version number (a working copy) must not be skipped. Sizes and times of the
    package's files, not their bytes: some 0.3 ms per run."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent
    for folder, subfolders, files in os.walk(package):
        subfolders[:] = sorted(s for s in subfolders if s != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                stat = os.stat(os.path.join(folder, name))
                digest.update(f"{folder}/{name}:{stat.st_mtime_ns}:{stat.st_size};".encode())
    return digest.hexdigest()


def _key(ctx: Context, playbook: Playbook) -> str:
    inventory = ctx.inventory
    inventory_text = inventory.doc.text if inventory is not None and inventory.doc else ""
    parts = [
        __version__,
        str(FORMAT),
        _code(),
        str(ctx.root.resolve()),
        str(inventory.path) if inventory is not None else "",
        str(playbook.path.resolve()),
        playbook.sha256,
        hashlib.sha256(inventory_text.encode()).hexdigest(),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _steps(ctx: Context, playbook: Playbook) -> Iterator[tuple[Playbook, Step]]:
    """Every step of the playbook and of the playbooks it includes."""
    seen = {playbook.path.resolve()}
    yield from ((playbook, s) for s in playbook.walk())
    for path, (pb, _) in ctx.cache.items():
        if pb is not None and path not in seen:
            seen.add(path)
            yield from ((pb, s) for s in pb.walk())


def _read_by_checks(ctx: Context, playbook: Playbook) -> list[list[str]]:
    """Every file the checks read besides the playbook, as the checks reached it:
    [kind, where it is named, the name as written, the file it resolved to, its
    sha256], includes in the order they are reached (an include's own includes
    after it)."""
    read: list[list[str]] = []
    for pb, step in _steps(ctx, playbook):
        if step.kind == "include" and isinstance(step.body, str):
            target, why = ctx.include(pb, step.body)
            included = None if why else ctx.cache.get(target, (None, []))[0]
            if included is None:
                raise ValueError("a remembered pass includes only valid playbooks")
            read.append(["include", str(pb.path), step.body, str(target), included.sha256])
        elif step.kind == "sql_file" and isinstance(step.body, str):
            found = sqlfiles.read(ctx.root, step.body)
            if found.digest is None or found.message is not None:
                raise ValueError("a remembered pass reads only usable SQL files")
            read.append(["sql_file", str(pb.path), step.body, str(found.path), found.digest])
    return read


def _unchanged(ctx: Context, playbook: Playbook, read: Any) -> bool:
    """Whether every file the checks read is reached the same way today: each
    name resolved again (symlinks, folders), the project's bounds applied
    again, and the content the same."""
    if not isinstance(read, list):
        return False
    playbooks = {str(playbook.path): playbook}
    for item in read:
        if not (
            isinstance(item, list) and len(item) == 5 and all(isinstance(x, str) for x in item)
        ):
            return False
        kind, where, written, resolved, digest = item
        including = playbooks.get(where)
        if including is None:
            return False
        if kind == "include":
            target, why = ctx.include(including, written)
            included = None if why else ctx.load_include(including, written)
            if included is None or str(target) != resolved or included.sha256 != digest:
                return False
            playbooks[str(included.path)] = included
        elif kind == "sql_file":
            found = sqlfiles.read(ctx.root, written)
            if found.message is not None or str(found.path) != resolved or found.digest != digest:
                return False
        else:
            return False
    return True


def _compiled(ctx: Context, playbook: Playbook) -> dict[str, Any]:
    return {"read": _read_by_checks(ctx, playbook)}


def passed(ctx: Context, playbook: Playbook) -> bool:
    """Whether these very files passed every check before (includes end up in ctx)."""
    stored = doccache.read_entry(_folder(ctx), _key(ctx, playbook))
    try:
        entry = orjson.loads(stored or b"")
        read = entry["read"]
    except (ValueError, KeyError, TypeError):
        return False
    return _unchanged(ctx, playbook, read)


def remember(ctx: Context, playbook: Playbook) -> None:
    """Best effort: a cache that cannot be written is only a slower run."""
    with contextlib.suppress(OSError, TypeError, ValueError):
        entry = json.dumps(_compiled(ctx, playbook))
        doccache.write(_folder(ctx), _key(ctx, playbook), entry)
