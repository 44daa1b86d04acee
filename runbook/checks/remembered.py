"""Checks that passed, remembered: the same files pass the same checks again.

Checking a playbook's meaning (names, templates, includes, SQL files) costs
about 0.02 ms per step, every run; a morning check is the same files every
morning. When every check passes, an entry is written under
`.runbook/cache/checks/`, keyed by runbook's version and code and the playbook's
and the inventory's text, listing every other file the checks read (included playbooks,
SQL files) with its sha256. A later run with the same key re-reads those files;
if each is unchanged (or still absent), the checks are skipped, and the SQL
templates and expressions compiled when the entry was written are taken as
they are (compiling is most of a step's own work). Anything else,
including a damaged or missing entry, means checking again. Only passes are
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

from runbook import __version__, actions, doccache, sqlprogram, tmplfast
from runbook.checks.common import Context, get_path, sql_file_path
from runbook.checks.templates import matches
from runbook.model import Playbook, Step
from runbook.template import Kind

# Bumped when what the checks look at changes without a version change.
FORMAT = 2


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
        str(playbook.path.resolve()),
        playbook.sha256,
        hashlib.sha256(inventory_text.encode()).hexdigest(),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _steps(ctx: Context, playbook: Playbook) -> Iterator[tuple[Playbook, Step]]:
    """Every step of the playbook and of the playbooks it includes."""
    seen = {playbook.path.resolve()}
    yield from ((playbook, s) for s in playbook.walk())
    for path, (pb, _) in ctx.cache.items():
        if pb is not None and path not in seen:
            seen.add(path)
            yield from ((pb, s) for s in pb.walk())


def _templates(ctx: Context, playbook: Playbook) -> tuple[set[str], set[str]]:
    """The SQL templates and the expressions of every step."""
    sql: set[str] = set()
    expressions: set[str] = set()
    for pb, step in _steps(ctx, playbook):
        if isinstance(step.when, tuple):
            expressions.update(step.when)
        if isinstance(step.until, tuple):
            expressions.update(step.until)
        for gate in step.gates:
            expressions.update(gate.that)
        assert pb.doc is not None
        raw = get_path(pb.doc.data, step.data_path)
        for field in actions.REGISTRY[step.kind].TEMPLATES:
            found = (
                sql if field.kind is Kind.SQL else expressions if field.kind is Kind.EXPR else None
            )
            if found is None:
                continue
            for _, value in matches(raw, field.path):
                found.update(
                    v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)
                )
    return sql, expressions


def _read_by_checks(ctx: Context, playbook: Playbook) -> dict[str, Any]:
    """The files the checks read besides the playbook, with what each held, and
    the playbooks' templates compiled (a run then starts with them ready)."""
    includes: dict[str, str | None] = {}
    sql_files: dict[str, str | None] = {}
    for path, (pb, _) in ctx.cache.items():
        if path != playbook.path.resolve():
            includes[str(path)] = pb.sha256 if pb is not None else None
    for _, step in _steps(ctx, playbook):
        if step.kind == "sql_file" and isinstance(step.body, str):
            target = sql_file_path(ctx.root, step.body)
            sql_files[str(target)] = _file_digest(target)
    sql, expressions = _templates(ctx, playbook)
    return {
        "includes": includes,
        "sql_files": sql_files,
        "programs": sqlprogram.dump(sql),
        "expressions": tmplfast.dump_expressions(expressions),
    }


def passed(ctx: Context, playbook: Playbook) -> bool:
    """Whether these very files passed every check before (includes end up in ctx)."""
    try:
        entry = orjson.loads((_folder(ctx) / f"{_key(ctx, playbook)}.json").read_bytes())
        includes, sql_files = entry["includes"], entry["sql_files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if not isinstance(includes, dict) or not isinstance(sql_files, dict):
        return False
    for path, digest in includes.items():
        included, _ = ctx.load(Path(path))
        if (included.sha256 if included is not None else None) != digest:
            return False
    if not all(_file_digest(Path(path)) == digest for path, digest in sql_files.items()):
        return False
    # Templates compiled by the run that wrote the entry: only a cache, so an
    # entry that holds none or holds them damaged just means compiling them.
    with contextlib.suppress(KeyError, TypeError, ValueError):
        sqlprogram.prime(entry.get("programs", {}))
    with contextlib.suppress(KeyError, TypeError, ValueError):
        tmplfast.prime_expressions(entry.get("expressions", {}))
    return True


def remember(ctx: Context, playbook: Playbook) -> None:
    """Best effort: a cache that cannot be written is only a slower run."""
    with contextlib.suppress(OSError, TypeError, ValueError):
        entry = json.dumps(_read_by_checks(ctx, playbook))
        doccache.write(_folder(ctx), _key(ctx, playbook), entry)
