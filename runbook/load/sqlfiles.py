"""Reading a `sql_file`: the one way, for the checks, the check cache and the run.

A step's `sql_file` names a file under the project's `sql/` folder. Whoever
reads it (validation, the remembered checks, the run itself) goes through
`read`, which resolves symlinks and refuses what ends up outside `sql/`, what
is not a regular file (a FIFO would hang the read), what is too large, what is
not UTF-8, and text holding a NUL character (PostgreSQL would end the statement
there while the output and the journal show the rest). A file re-pointed or
swapped between validation and run is refused by the run as it would have been
by validation.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 5_000_000


@dataclass(frozen=True)
class SqlFile:
    """What reading a `sql_file` found: its text, or why it cannot be used."""

    name: str
    path: Path
    text: str | None = None
    digest: str | None = None
    code: str | None = None
    message: str | None = None


def folder(root: Path) -> Path:
    return (root / "sql").resolve()


def path_of(root: Path, name: str) -> Path:
    """Where `name` leads, symlinks resolved (not necessarily inside sql/)."""
    return (folder(root) / name.replace("\0", "")).resolve()


def read(root: Path, name: str) -> SqlFile:
    """The file `name` under `root`/sql, read once, checked whole."""
    where = path_of(root, name)
    shown = repr(name) if name.isascii() and name.isprintable() else ascii(name)

    def refused(code: str, message: str, digest: str | None = None) -> SqlFile:
        return SqlFile(name, where, None, digest, code, message)

    if "\0" in name:
        return refused("nul", f"sql_file {shown} holds a NUL character")
    if not where.is_relative_to(folder(root)):
        return refused(
            "sql-file-outside", f"sql_file {shown} points outside the project's sql/ folder"
        )
    try:
        raw = _read_regular(where)
    except FileNotFoundError:
        return refused(
            "sql-file-missing", f"sql_file {shown} does not exist in the project's sql/ folder"
        )
    except _NotRegular:
        return refused("sql-file-type", f"sql_file {shown} is not a regular file")
    except _TooLarge:
        return refused("too-large", f"sql_file {shown} is larger than {MAX_BYTES // 1_000_000} MB")
    except OSError as exc:
        return refused("io", f"cannot read sql_file {shown}: {exc.strerror}")
    digest = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _position(raw, exc.start)
        return refused(
            "encoding",
            f"sql_file {shown} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at line {line}, "
            f"column {col}); save it as UTF-8",
            digest,
        )
    if "\0" in text:
        line, col = _position(raw, raw.index(b"\0"))
        return refused(
            "nul",
            f"sql_file {shown} holds a NUL character at line {line}, column {col}; PostgreSQL "
            "would end the statement there",
            digest,
        )
    return SqlFile(name, where, text, digest)


class _NotRegular(OSError):
    pass


class _TooLarge(OSError):
    pass


def _read_regular(path: Path) -> bytes:
    """The bytes of a regular file. O_NOFOLLOW: the path is already resolved, so
    a symlink found there now was put in after resolving; O_NONBLOCK: opening a
    FIFO must not wait for a writer."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _NotRegular(path)
        if info.st_size > MAX_BYTES:
            raise _TooLarge(path)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise _TooLarge(path)
    return data


def _position(raw: bytes, index: int) -> tuple[int, int]:
    before = raw[:index]
    return before.count(b"\n") + 1, index - (before.rfind(b"\n") + 1) + 1
