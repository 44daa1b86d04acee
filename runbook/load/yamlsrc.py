"""YAML → plain data plus the source position of every node, in one parse.

PyYAML composes a node graph that carries marks; we construct the data ourselves
from that graph so that we can (a) remember where every value and key came from,
(b) refuse what PyYAML silently accepts: duplicate keys, alias bombs, tabs used
for indentation, unknown tags, and (c) resolve scalars by YAML 1.2's core schema,
so `on`, `no` and `08:00` stay strings and `010` is ten.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runbook.errors import Position, Problem

# An expansion budget: a playbook has hundreds of nodes, an alias bomb billions.
MAX_NODES = 200_000
MAX_BYTES = 5_000_000

DataPath = tuple[str | int, ...]

NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


@dataclass
class Document:
    """A parsed YAML file: its data and where each part of it stands."""

    path: str
    text: str
    data: Any = None
    values: dict[DataPath, Position] = field(default_factory=dict)
    keys: dict[DataPath, Position] = field(default_factory=dict)
    # For string scalars: the style (`|`, `>`, `'`, `"` or None) so that a
    # template's inner line can be mapped back to a file line.
    styles: dict[DataPath, str | None] = field(default_factory=dict)
    # A document from the cache brings its tables above undecoded: a run that
    # reports no problem never looks at a position (~0.02 ms per step).
    pending: Callable[[Document], None] | None = field(default=None, repr=False)

    def _decode(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending(self)

    def position(self, path: DataPath, *, key: bool = False) -> Position:
        """Where `path` stands; the nearest enclosing node if it has no entry."""
        self._decode()
        table = self.keys if key else self.values
        if path in table:
            return table[path]
        while path:
            if key and path in self.keys:
                return self.keys[path]
            path = path[:-1]
            if path in self.values:
                return self.values[path]
        return self.values.get((), Position(1, 1))

    def style(self, path: DataPath) -> str | None:
        """The style of the string scalar at `path` (None for plain or unknown)."""
        self._decode()
        return self.styles.get(path)


class YamlError(Exception):
    """A YAML hazard at a position; turned into a Problem by the loader."""

    def __init__(self, message: str, position: Position, code: str = "yaml") -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.code = code


def parse(path: str, raw: bytes) -> Document:
    """Parse one YAML document with positions; raise YamlError on any hazard.

    The parser lives in runbook.load.yamlparse, imported here on first use: a run whose
    documents all come from the document cache never loads PyYAML (~10 ms).
    """
    from runbook.load import yamlparse

    return yamlparse.parse(path, raw)


def format_path(path: DataPath) -> str:
    """`("steps", 2, "gate")` → `$.steps[2].gate`."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            out += f".{part}"
        else:
            # Escaped unless printable ASCII: a look-alike key must look different.
            out += (
                "[" + (repr(part) if part.isascii() and part.isprintable() else ascii(part)) + "]"
            )
    return out


def decode(raw: bytes) -> str:
    """UTF-8 (with an optional BOM) or a YamlError naming the first bad byte."""
    if len(raw) > MAX_BYTES:
        raise YamlError(
            f"file is larger than {MAX_BYTES // 1_000_000} MB", Position(1, 1), "too-large"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before) - (before.rfind(b"\n") + 1) + 1
        raise YamlError(
            f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save it as UTF-8",
            Position(line, col),
            "encoding",
        ) from None
    return text


def check_text(text: str) -> None:
    if not text.strip() or all(
        not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()
    ):
        raise YamlError("file is empty: expected a mapping", Position(1, 1), "empty")
    if "\x00" in text:
        index = text.index("\x00")
        line = text.count("\n", 0, index) + 1
        col = index - (text.rfind("\n", 0, index) + 1) + 1
        raise YamlError("NUL character in file", Position(line, col), "nul")


def plain_scalar(text: str) -> Any:
    """A command-line value typed like a plain YAML 1.2 scalar (5, 1.5, true, null, text)."""
    if text and NULL.match(text):
        return None
    if BOOL.match(text):
        return text.lower() == "true"
    try:
        if INT.match(text):
            return parse_int(text)
        if FLOAT.match(text):
            return float(text)
    except ValueError:
        pass
    return text


def parse_int(text: str) -> int:
    text = text.replace("_", "")
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


def to_problem(path: str, exc: YamlError) -> Problem:
    return Problem(path, exc.position.line, exc.position.col, "", exc.message, exc.code)
